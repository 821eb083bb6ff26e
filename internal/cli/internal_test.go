package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPromptMode(t *testing.T) {
	tests := []struct{ input, want, err string }{
		{"\n", "local", ""},
		{"2\n", "task", ""},
		{"job\n", "job", ""},
		{"jobs-api\n", "job", ""},
		{"4\n", "remote", ""},
		{"9\n", "", "--mode: must be one of"},
		{"", "", "no mode selected"},
	}
	for _, tt := range tests {
		var errOut strings.Builder
		got, err := promptMode(&IOStreams{In: strings.NewReader(tt.input), ErrOut: &errOut})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("input %q: error = %v, want %q", tt.input, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("input %q: %q, %v; want %q", tt.input, got, err, tt.want)
		}
		if !strings.Contains(errOut.String(), "Select executor mode:") || !strings.Contains(errOut.String(), "2) task") {
			t.Errorf("prompt text:\n%s", errOut.String())
		}
	}
}

func TestSlugAndCamel(t *testing.T) {
	for in, want := range map[string]string{"Image Resizer!": "image-resizer", "  My__Plugin 2 ": "my-plugin-2", "ÄÖ": "", "abc": "abc"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"auto_label": "AutoLabel", "train": "Train", "post-annotation": "PostAnnotation"} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEveryCategoryHasAStarter(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range categories {
		if c.action == "" || c.description == "" || seen[c.name] {
			t.Errorf("category %+v", c)
		}
		seen[c.name] = true
	}
	if len(seen) != 9 {
		t.Errorf("%d categories, want the 9 of config.yaml", len(seen))
	}
}

// TestCreateAsksAgain: the wizard asks again after a bad answer, asks about
// an existing directory before anything else, and replaces it only when
// told to.
func TestCreateAsksAgain(t *testing.T) {
	sdk, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNAPSE_SDK_DIR", sdk)
	dir := t.TempDir()
	existing := filepath.Join(dir, "synapse-taken-plugin")
	if err := os.MkdirAll(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(existing, "keep.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// name; a bad code, then a good one (that exists); a bad y/n, then no.
	var errOut, out strings.Builder
	in := strings.NewReader("Taken\nBad_Code\ntaken\nmaybe\nn\n")
	err = createPlugin(&IOStreams{In: in, Out: &out, ErrOut: &errOut}, createOptions{path: dir, interactive: true})
	if err != nil {
		t.Fatalf("createPlugin: %v\n%s", err, errOut.String())
	}
	text := errOut.String()
	for _, want := range []string{"a code is lowercase letters", "answer y or n", "Cancelled; nothing was changed."} {
		if !strings.Contains(text, want) {
			t.Errorf("the dialogue lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Category") {
		t.Errorf("asked for the category before settling the directory:\n%s", text)
	}
	if _, err := os.Stat(filepath.Join(existing, "keep.txt")); err != nil {
		t.Errorf("the existing directory was changed: %v", err)
	}
}
