package capture

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"whole lines", []string{"a\nb\n"}, []string{"a", "b"}},
		{"split across writes", []string{"hel", "lo\nwor", "ld"}, []string{"hello", "world"}},
		{"crlf", []string{"a\r\nb\r", "\nc"}, []string{"a", "b", "c"}},
		{"progress bar with \\r and no final newline", []string{"\r10%", "\r50%", "\r100%"}, []string{"10%", "50%", "100%"}},
		{"invalid UTF-8", []string{"ok \xff\xfe é\n"}, []string{`ok \xff\xfe é`}},
		{"overlong line is split", []string{long + "\n"}, []string{long[:MaxLine], long[MaxLine:]}},
		{"empty lines kept", []string{"\n\n"}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			l := NewLines(func(s string) { got = append(got, s) })
			for _, w := range tt.writes {
				if _, err := l.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			l.Flush()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines = %q, want %q", trim(got), trim(tt.want))
			}
			for _, s := range got {
				if !utf8.ValidString(s) || len(s) > MaxLine || strings.ContainsAny(s, "\r\n") {
					t.Errorf("bad line %q", trim([]string{s}))
				}
			}
		})
	}
}

func trim(ls []string) []string {
	out := make([]string, len(ls))
	for i, s := range ls {
		if len(s) > 40 {
			s = fmt.Sprintf("%s…(%d bytes)", s[:20], len(s))
		}
		out[i] = s
	}
	return out
}

// TestStart captures this process's stdout: writes to os.Stdout (fd 1)
// come back as lines; Orig still reaches the real stdout.
func TestStart(t *testing.T) {
	var got []string
	s, err := Start(1, func(line string) { got = append(got, line) })
	if err != nil {
		if runtime.GOOS != "windows" && runtime.GOOS != "plan9" {
			t.Fatal(err)
		}
		t.Skipf("capture is not supported on %s: %v", runtime.GOOS, err)
	}
	fmt.Print("from the action\nunterminated \xff")
	s.Sync() // an outcome written now comes after these lines
	if n := len(got); n != 2 {
		s.Stop()
		t.Fatalf("after Sync %d lines were passed on, want 2: %q", n, got)
	}
	_, _ = os.Stdout.Write([]byte("\rmore"))
	s.Stop()
	if strings.Join(got, "|") != `from the action|unterminated \xff|more` {
		t.Errorf("captured %q", got)
	}
	if s.Orig == nil {
		t.Error("no original stdout")
	}
}
