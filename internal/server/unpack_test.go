package server

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"os"
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
