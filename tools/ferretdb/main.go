// Command ferretdb-embedded runs FerretDB v1 (SQLite backend) for the sync service's embedded
// default and test runs.
//
// It is our own main package, not FerretDB's cmd/ferretdb: built as a dependency, FerretDB's
// own command panics at start because its build/version files are missing; embedded through
// the ferretdb package that check is skipped.
//
// It prints one line "READY <mongodb uri>" once it accepts connections, and exits when its
// standard input closes, so a parent that dies (even by SIGKILL) never leaves it behind.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/build/version"
	"github.com/FerretDB/FerretDB/ferretdb"
)

// ferretdbVersion must match the FerretDB requirement in go.mod.
const ferretdbVersion = "v1.24.2"

func main() {
	dir := flag.String("dir", "", "folder for the SQLite files (created if missing)")
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	watchStdin := flag.Bool("exit-on-stdin-eof", true, "exit when standard input closes")
	logLevel := flag.String("log-level", "error", "debug, info, warn or error")
	flag.Parse()

	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb-embedded: -dir is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil || os.MkdirAll(abs, 0o755) != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-embedded: cannot use data folder %q\n", *dir)
		os.Exit(2)
	}

	// The version files are not part of the module; report the pinned release ourselves.
	version.Get().Version = ferretdbVersion

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		level = slog.LevelError
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-embedded: %s\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			stop()
		}()
	}

	done := make(chan struct{})
	go func() {
		_ = f.Run(ctx)
		close(done)
	}()

	fmt.Printf("READY %s\n", f.MongoDBURI())
	<-done
}
