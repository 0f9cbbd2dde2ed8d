package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/arrwdb/arrwcdc/config"
)

// newLogger builds the process's logger: level and format from cfg,
// written to w (stderr), so stdout stays clean for tail's output.
func newLogger(cfg config.Config, w io.Writer) (*zap.Logger, error) {
	level := zapcore.InfoLevel // commands without a --log-level (version, token…)
	var err error
	if cfg.LogLevel != "" {
		level, err = zapcore.ParseLevel(cfg.LogLevel)
	}
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch cfg.LogFormat {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}
