package demoapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
)

// Config configures an [App]. Zero values mean the documented defaults.
type Config struct {
	// HTTPListen is the REST listener; "" means 127.0.0.1:8080, port 0 a
	// free port.
	HTTPListen string
	// DB is the SQLite file of the libraries and the outbox; "" means
	// ./demoapp.db.
	DB string
	// Prefix is the subject prefix; "" means "events".
	Prefix string
	// Source names this instance in its events; "" means the host name.
	Source string
	// Hooks configures search events (off or sampled).
	Hooks publisher.HooksConfig
}

// App is one running demo-app instance: repository, outbox relay and HTTP.
type App struct {
	cfg Config
	nc  *nats.Conn
	log *zap.Logger

	db    *sql.DB
	pub   *publisher.Publisher
	ob    *outbox.Outbox
	relay *outbox.Relay
	repo  *Repository
	srv   *http.Server
	ln    net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewApp returns an App publishing through nc (which the caller owns).
func NewApp(cfg Config, nc *nats.Conn, log *zap.Logger) *App {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = "127.0.0.1:8080"
	}
	if cfg.DB == "" {
		cfg.DB = "./demoapp.db"
	}
	return &App{cfg: cfg, nc: nc, log: log.Named("demoapp")}
}

// Start opens the database, starts the relay and the HTTP listener. If it
// fails, it undoes what it did.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = a.Shutdown(context.Background())
		}
	}()
	if a.db, err = outbox.OpenSQLite(a.cfg.DB); err != nil {
		return err
	}
	popts := []publisher.Option{publisher.WithLogger(a.log)}
	oopts := []outbox.Option{outbox.WithLogger(a.log)}
	if a.cfg.Prefix != "" {
		popts = append(popts, publisher.WithPrefix(a.cfg.Prefix))
		oopts = append(oopts, outbox.WithPrefix(a.cfg.Prefix))
	}
	if a.cfg.Source != "" {
		popts = append(popts, publisher.WithSource(a.cfg.Source))
		oopts = append(oopts, outbox.WithSource(a.cfg.Source))
	}
	if a.pub, err = publisher.New(a.nc, popts...); err != nil {
		return err
	}
	if a.ob, err = outbox.New(a.db, outbox.SQLite, oopts...); err != nil {
		return err
	}
	if err = a.ob.Migrate(ctx); err != nil {
		return err
	}
	hooks, err := publisher.NewHooks(a.pub, a.cfg.Hooks)
	if err != nil {
		return err
	}
	if a.repo, err = NewRepository(ctx, a.db, a.ob, hooks); err != nil {
		return err
	}
	if a.relay, err = outbox.NewRelay(a.ob, a.pub); err != nil {
		return err
	}
	if a.ln, err = net.Listen("tcp", a.cfg.HTTPListen); err != nil {
		return fmt.Errorf("demoapp: listen: %w", err)
	}
	a.srv = &http.Server{Handler: NewServer(a.repo, a.log), ReadHeaderTimeout: 10 * time.Second}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		if err := a.relay.Run(rctx); err != nil {
			a.log.Error("relay stopped", zap.Error(err))
		}
	}()
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", zap.Error(err))
		}
	}()
	a.log.Info("demo-app ready", zap.String("url", a.URL()), zap.String("db", a.cfg.DB))
	return nil
}

// URL is the base URL of the REST API.
func (a *App) URL() string {
	if a.ln == nil {
		return ""
	}
	return "http://" + a.ln.Addr().String()
}

// Repository returns the app's repository (nil before Start).
func (a *App) Repository() *Repository { return a.repo }

// Outbox returns the app's outbox (nil before Start).
func (a *App) Outbox() *outbox.Outbox { return a.ob }

// Shutdown stops HTTP, then the relay (rows not yet relayed stay in the
// outbox for the next start), then closes the publisher and the database.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		errs = append(errs, a.srv.Shutdown(ctx))
	} else if a.ln != nil {
		errs = append(errs, a.ln.Close())
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.pub != nil {
		errs = append(errs, a.pub.Close(ctx))
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	return errors.Join(errs...)
}
