package natslog_test

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/arrwdb/arrwcdc/internal/natslog"
)

func TestLevelsAndFatalDoesNotExit(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := natslog.New(zap.New(core))
	l.Noticef("notice %d", 1)
	l.Warnf("warn %d", 2)
	l.Errorf("error %d", 3)
	l.Fatalf("fatal %d", 4) // must return: a test binary that exits fails loudly
	l.Debugf("debug %d", 5)
	l.Tracef("trace %d", 6)

	want := []struct {
		level zapcore.Level
		msg   string
	}{
		{zapcore.InfoLevel, "notice 1"}, {zapcore.WarnLevel, "warn 2"}, {zapcore.ErrorLevel, "error 3"},
		{zapcore.ErrorLevel, "fatal 4"}, {zapcore.DebugLevel, "debug 5"}, {zapcore.DebugLevel, "trace 6"},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Message != w.msg {
			t.Errorf("entry %d = %v %q, want %v %q", i, got[i].Level, got[i].Message, w.level, w.msg)
		}
	}
	natslog.New(nil).Noticef("a nil logger discards")
}
