package cli

import (
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
