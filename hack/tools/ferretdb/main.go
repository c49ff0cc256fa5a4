// Command ferretdb runs FerretDB v1 with its SQLite backend through FerretDB's embeddable API.
//
// Building upstream's cmd/ferretdb from the module proxy panics at start (its version package
// requires a build/version/version.txt that only its own build scripts generate); a main
// package in this wrapper module is the supported way to embed it. Test tooling, not product code.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("sqlite-dir", "data", "directory holding one SQLite file per database")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		os.Stdout.WriteString("ferretdb v1.24.0 (sqlite)\n")
		return
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		log.Fatalf("invalid --log-level %q: %v", *level, err)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatalf("cannot create --sqlite-dir: %v", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
