package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// dbFileName is the SQLite database's file in the data directory (see
// OpenStore).
const dbFileName = "synapse.db"

// NoStoreError is OpenExistingStore's error for a data directory that
// holds no database (or is no directory).
type NoStoreError struct {
	DataDir string
	NotDir  bool // DataDir is a file, not a directory
}

func (e *NoStoreError) Error() string {
	if e.NotDir {
		return fmt.Sprintf("%s is not a directory, so it holds no server database: give the --data-dir that synapse server runs with (or --db with its PostgreSQL URL)", e.DataDir)
	}
	return fmt.Sprintf("no server database in %s (no %s there; nothing was created): check the flag, and give the --data-dir that synapse server runs with (or --db with its PostgreSQL URL); for a new server, start synapse server --data-dir %s once first: it creates the database and prints the admin token", e.DataDir, dbFileName, e.DataDir)
}

// OpenExistingStore is OpenStore for the commands that manage a server's
// data (synapse server token create|list|revoke): without DB, DataDir must
// hold the database already, else the error is a *NoStoreError. A
// mistyped directory must not become a new, empty store.
func OpenExistingStore(ctx context.Context, cfg Config) (*store.Store, error) {
	if cfg.DB == "" {
		if fi, err := os.Stat(cfg.DataDir); err == nil && !fi.IsDir() {
			return nil, &NoStoreError{DataDir: cfg.DataDir, NotDir: true}
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, dbFileName)); errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, &NoStoreError{DataDir: cfg.DataDir, NotDir: errors.Is(err, syscall.ENOTDIR)}
		}
	}
	return OpenStore(ctx, cfg)
}
