//go:build integration

package remote

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// sdkArchive is what the Python SDK's `synapse plugin publish` zips
// (synapse-sdk 2026.2.17: the .gitignore and .synapseignore patterns plus
// ArchiveFilter's DEFAULT_EXCLUDES, then create_archive), as the file
// names in the zip.
const sdkArchive = `
import json, sys
from pathlib import Path
from synapse_sdk.cli.plugin.publish import load_synapseignore
from synapse_sdk.utils.file.archive import ArchiveFilter, create_archive, list_archive_contents
src = Path(sys.argv[1])
f = ArchiveFilter.from_patterns(exclude=load_synapseignore(src), use_defaults=True)
create_archive(src, sys.argv[2], filter=f)
print(json.dumps(sorted(list_archive_contents(sys.argv[2]))))
`

// TestIntegrationPythonPackMatchesSDK packs a Python plugin with Pack and
// with the Python SDK's own publish code: the zips hold the same files,
// at the same paths. (The plugin has no .synapse directory and no
// negated patterns: Pack always leaves .synapse out, which the Python SDK
// packs, and honours "!pattern", which the Python SDK's fnmatch does not.)
func TestIntegrationPythonPackMatchesSDK(t *testing.T) {
	python := os.Getenv("SYNAPSE_TEST_SDK_PYTHON")
	if python == "" {
		t.Fatal("SYNAPSE_TEST_SDK_PYTHON is not set: run scripts/python-sdk.sh (make test-integration does) and point it at the python it prints")
	}
	p := pythonPlugin(t)
	if err := os.RemoveAll(filepath.Join(p.Dir(), ".synapse")); err != nil {
		t.Fatal(err)
	}
	pkg, err := Pack(t.Context(), p, "")
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, f := range pkg.Files {
		ours = append(ours, f.Name)
	}
	cmd := exec.CommandContext(t.Context(), python, "-c", sdkArchive, p.Dir(), filepath.Join(t.TempDir(), "plugin.zip"))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the Python SDK's archive: %v\n%s", err, stderr)
	}
	var theirs []string
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatalf("the Python SDK printed %s: %v", out, err)
	}
	if !slices.Equal(ours, theirs) {
		t.Errorf("Pack zips %q; the Python SDK's publish zips %q", ours, theirs)
	}
}
