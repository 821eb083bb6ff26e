package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// dbFileName is the SQLite database's file in the data directory (see
// OpenStore).
const dbFileName = "synapse.db"

// NoStoreError is OpenExistingStore's error for a data directory that
// holds no database.
type NoStoreError struct {
	DataDir string
}

func (e *NoStoreError) Error() string {
	return fmt.Sprintf("no server database in %s (no %s there; nothing was created): give the --data-dir that synapse server runs with, or --db with its PostgreSQL URL", e.DataDir, dbFileName)
}

// OpenExistingStore is OpenStore for the commands that manage a server's
// data (synapse server token list|revoke): without DB, DataDir must hold
// the database already, else the error is a *NoStoreError. A mistyped
// directory must not become a new, empty store.
func OpenExistingStore(ctx context.Context, cfg Config) (*store.Store, error) {
	if cfg.DB == "" {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, dbFileName)); errors.Is(err, fs.ErrNotExist) {
			return nil, &NoStoreError{DataDir: cfg.DataDir}
		}
	}
	return OpenStore(ctx, cfg)
}
