//go:build integration

package ray

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/pack"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"
)

// A package from the package cache is read only when the cluster lacks it;
// an entry edited on disk is then packed again and the fresh package is
// uploaded, never the edited one.
func TestIntegrationPackageCacheEditedEntryNotUploaded(t *testing.T) {
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SYNAPSE_TEST_RAY_ADDRESS is not set: CI must run the integration suite against a real Ray head")
		}
		t.Skip("no Ray head: set SYNAPSE_TEST_RAY_ADDRESS")
	}
	c, err := rayapi.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	// Unique content: a package the cluster has never seen.
	dir, bin := t.TempDir(), filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(filepath.Join(dir, "unique.bin"), []byte(rand.Text()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, bytes.Repeat([]byte("binary "), 10000), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := pack.Options{Dir: dir, Binary: bin}
	want, err := pack.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	cache := pack.Cache{Dir: t.TempDir()}
	if _, _, err := cache.Build(opts, "key"); err != nil {
		t.Fatal(err)
	}
	zips, _ := filepath.Glob(filepath.Join(cache.Dir, "*", "*.zip"))
	if len(zips) != 1 {
		t.Fatalf("cache zips %v", zips)
	}
	data, err := os.ReadFile(zips[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(zips[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	pkg, cached, err := cache.Build(opts, "key")
	if err != nil || !cached {
		t.Fatalf("Cache.Build: cached %v, %v", cached, err)
	}
	if has, err := c.HasPackage(t.Context(), pkg.Name); err != nil || has {
		t.Fatalf("HasPackage before upload: %v, %v", has, err)
	}
	uploaded, err := ensurePackage(t.Context(), c, pkg)
	if err != nil || !uploaded {
		t.Fatalf("ensurePackage: uploaded %v, %v", uploaded, err)
	}
	if pkg.Name != want.Name || !bytes.Equal(pkg.Data, want.Data) {
		t.Fatalf("uploaded %s (%d bytes), want the fresh package %s (%d bytes)", pkg.Name, len(pkg.Data), want.Name, len(want.Data))
	}
	if has, err := c.HasPackage(t.Context(), want.Name); err != nil || !has {
		t.Fatalf("HasPackage after upload: %v, %v", has, err)
	}
	// Now the cluster has it: a hit is not read at all.
	again, cached, err := cache.Build(opts, "key")
	if err != nil || !cached {
		t.Fatalf("Cache.Build again: cached %v, %v", cached, err)
	}
	if uploaded, err := ensurePackage(t.Context(), c, again); err != nil || uploaded || again.Data != nil {
		t.Fatalf("ensurePackage of a package the cluster has: uploaded %v, read %d bytes, %v", uploaded, len(again.Data), err)
	}
}
