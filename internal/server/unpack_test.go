package server

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zipEntry is one entry of a test zip: a file holding body, or, by mode,
// a directory, link or special file. A declared size other than 0 is what
// the header says instead of len(body) (a lying header).
type zipEntry struct {
	name     string
	mode     os.FileMode
	body     string
	declared uint64
}

func zipWith(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.body == "" && e.declared == 0 {
			h.Method = zip.Store // cheap, for zips of many empty entries
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		if e.declared == 0 {
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte(e.body))
			continue
		}
		var c bytes.Buffer
		fw, _ := flate.NewWriter(&c, flate.BestCompression)
		_, _ = fw.Write([]byte(e.body))
		_ = fw.Close()
		h.CRC32, h.CompressedSize64, h.UncompressedSize64 = crc32.ChecksumIEEE([]byte(e.body)), uint64(c.Len()), e.declared
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(c.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCheckZip(t *testing.T) {
	lim := zipLimits{entries: 4, unpacked: 100}
	file := func(name string) zipEntry { return zipEntry{name: name, body: "x"} }
	dir := func(name string) zipEntry { return zipEntry{name: name, mode: os.ModeDir | 0o755} }
	tests := []struct {
		name    string
		entries []zipEntry
		want    string // "" for a zip that passes
	}{
		{"files and directories", []zipEntry{dir("a/"), file("a/b.txt"), file("c"), dir("a/")}, ""},
		{"at the size limit", []zipEntry{{name: "a", body: strings.Repeat("x", 60)}, {name: "b", body: strings.Repeat("y", 40)}}, ""},
		{"parent directory", []zipEntry{file("../evil")}, `entry "../evil" escapes the release directory`},
		{"absolute", []zipEntry{file("/abs/evil")}, `entry "/abs/evil" escapes the release directory`},
		{"up and out", []zipEntry{file("a/../../evil")}, `entry "a/../../evil" escapes`},
		{"no name", []zipEntry{file("")}, `entry "" escapes`},
		{"symbolic link", []zipEntry{{name: "link", mode: os.ModeSymlink | 0o777, body: "/etc/passwd"}}, `entry "link" is a symbolic link, not a regular file`},
		{"named pipe", []zipEntry{{name: "fifo", mode: os.ModeNamedPipe | 0o644}}, `entry "fifo" is a named pipe`},
		{"device", []zipEntry{{name: "dev", mode: os.ModeDevice | 0o644}}, `entry "dev" is a device`},
		{"the same file twice", []zipEntry{file("a"), file("./a")}, `entry "./a" is in the zip twice`},
		{"a file under a file", []zipEntry{file("a"), file("a/b")}, `entry "a/b" is under "a", which is a file`},
		{"too many entries", []zipEntry{file("1"), file("2"), file("3"), file("4"), file("5")}, "the zip has 5 entries, more than the limit of 4"},
		{"unpacks to too much", []zipEntry{{name: "a", body: strings.Repeat("x", 60)}, {name: "b", body: strings.Repeat("y", 41)}}, `the zip unpacks to more than 100 bytes (entry "b", of 41 bytes`},
		{"a declared size past the limit", []zipEntry{{name: "bomb", body: "x", declared: 1 << 40}}, `entry "bomb", of 1099511627776 bytes`},
	}
	for _, tt := range tests {
		z := zipWith(t, tt.entries...)
		zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err = checkZip(zr, lim)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestUnzipWritesNoMoreThanDeclared: an entry whose data is longer (or
// shorter) than its header says is refused, and no more than the declared
// size reaches the disk.
func TestUnzipWritesNoMoreThanDeclared(t *testing.T) {
	big := strings.Repeat("a", 1<<20)
	tests := []struct {
		name  string
		entry zipEntry
		want  string
	}{
		{"longer than declared", zipEntry{name: "f", body: big, declared: 10}, `entry "f" holds more than the 10 bytes its header declares`},
		{"shorter than declared", zipEntry{name: "f", body: "short", declared: 100}, `entry "f"`},
		{"as declared", zipEntry{name: "f", body: big}, ""},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "r.zip")
		if err := os.WriteFile(path, zipWith(t, tt.entry), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		err := unzip(path, dir)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		limit := int64(len(tt.entry.body))
		if tt.entry.declared != 0 {
			limit = min(limit, int64(tt.entry.declared))
		}
		if fi, err := os.Stat(filepath.Join(dir, "f")); err == nil && fi.Size() > limit {
			t.Errorf("%s: %d bytes written, more than %d", tt.name, fi.Size(), limit)
		}
	}
}

// TestUnzipChecksFirst: unzip refuses what checkZip refuses, before it
// writes anything.
func TestUnzipChecksFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.zip")
	if err := os.WriteFile(path, zipWith(t, zipEntry{name: "ok", body: "x"}, zipEntry{name: "../evil", body: "x"}), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := unzip(path, dir); err == nil || !strings.Contains(err.Error(), `entry "../evil" escapes`) {
		t.Errorf("unzip = %v, want the escape refused", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("unzip wrote %v before refusing", names)
	}
}
