// Package natslog adapts a *zap.Logger to nats-server's Logger interface.
//
// nats-server's own logger exits the process on Fatalf; this one logs at
// error level and returns, so a failed embedded start surfaces as an error
// from broker.Start instead of killing the program (or a test binary).
package natslog

import "go.uber.org/zap"

// Logger implements server.Logger on top of zap.
type Logger struct{ s *zap.SugaredLogger }

// New returns a Logger writing to log (nil means no logging).
func New(log *zap.Logger) Logger {
	if log == nil {
		log = zap.NewNop()
	}
	return Logger{s: log.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

// Noticef logs at info level.
func (l Logger) Noticef(format string, v ...any) { l.s.Infof(format, v...) }

// Warnf logs at warn level.
func (l Logger) Warnf(format string, v ...any) { l.s.Warnf(format, v...) }

// Fatalf logs at error level and does not exit.
func (l Logger) Fatalf(format string, v ...any) { l.s.Errorf(format, v...) }

// Errorf logs at error level.
func (l Logger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }

// Debugf logs at debug level.
func (l Logger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }

// Tracef logs at debug level (zap has no trace level).
func (l Logger) Tracef(format string, v ...any) { l.s.Debugf(format, v...) }
