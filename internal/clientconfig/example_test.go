package clientconfig_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/synapse-sdk/synapse-go/internal/clientconfig"
)

// The host comes from the environment, the token from the file.
func ExampleResolve() {
	dir, _ := os.MkdirTemp("", "synapse-config")
	defer os.RemoveAll(dir)
	f, _ := clientconfig.Load(filepath.Join(dir, "config.json"))
	f.Host, f.AccessToken = "http://127.0.0.1:8080", "syn_0123456789abcdef"
	f.Agent = &clientconfig.Agent{ID: 1, Name: "local"}
	if err := f.Save(); err != nil {
		panic(err)
	}
	env := map[string]string{clientconfig.EnvHost: "http://backend.internal:8080"}
	c := clientconfig.Resolve(clientconfig.Flags{}, func(k string) string { return env[k] }, f)
	fmt.Println(c.Host, "from", c.HostFrom)
	fmt.Println("token from the file:", c.TokenFrom == f.Path, "agent", c.Agent.ID)
	// Output:
	// http://backend.internal:8080 from SYNAPSE_HOST
	// token from the file: true agent 1
}
