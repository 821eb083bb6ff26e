// Command plugin serves the actions of the executortest conformance suite.
package main

import (
	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/plugin"
)

func main() { plugin.Main(executortest.Actions()...) }
