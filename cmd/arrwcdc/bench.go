package main

import (
	"context"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/internal/bench"
)

// runBench runs one load scenario (package internal/bench) and prints its
// table, or its JSON with --json. A progress bar is drawn while stdout is a
// terminal. Logs are warnings and errors only unless --log-level debug, so
// that the embedded broker's start-up lines do not bury the figures. The
// result is printed even when deliveries are missing; the command then
// fails with bench.ErrIncomplete.
//
// A process started by the conns scenario as one of its client processes
// (bench.ConnsClientRequested) runs bench.RunConnsClient instead.
func runBench(ctx context.Context, cfg config.Config, e env) error {
	if bench.ConnsClientRequested() {
		return bench.RunConnsClient(ctx, e.stdin, e.stdout)
	}
	log := e.log
	if cfg.LogLevel != "debug" {
		log = log.WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))
	}
	natsOpts, err := cfg.NATSOptions()
	if err != nil {
		return err
	}
	b := cfg.Bench
	bc := b.Config
	bc.NATSURL, bc.NATSOptions, bc.Prefix, bc.Progress = cfg.NATSURL, natsOpts, cfg.Prefix, &bench.Progress{}
	stop := func() {}
	if !b.JSON && bench.IsTerminal(e.stdout) {
		stop = bench.ShowProgress(e.stdout, bc.Progress, 200*time.Millisecond)
	}
	res, err := bench.Run(ctx, bc, log)
	stop()
	if err != nil {
		return err
	}
	if b.JSON {
		err = res.WriteJSON(e.stdout)
	} else {
		err = res.WriteTable(e.stdout)
	}
	if err != nil {
		return err
	}
	return res.Check()
}
