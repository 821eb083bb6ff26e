// Command synapse runs, creates and inspects Synapse plugins.
package main

import (
	"os"

	"github.com/synapse-sdk/synapse-go/internal/cli"
)

func main() { os.Exit(cli.Main()) }
