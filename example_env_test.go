package synapse_test

import (
	"fmt"

	synapse "github.com/synapse-sdk/synapse-go"
)

// Layers are merged lowest precedence first; later layers win key by key and
// a nil layer (here: no env file) is skipped. In a real program the first
// layer would be synapse.EnvFromOS("").
func ExampleEnv() {
	osEnv := synapse.NewEnv(map[string]any{ // stands in for EnvFromOS("")
		"HOST":  "os.example.com",
		"PORT":  "8000",
		"DEBUG": "off",
		"TAGS":  "os",
	})
	configEnv := synapse.NewEnv(map[string]any{
		"PORT":    9000,
		"TAGS":    " gpu, fast ,, eu ",
		"RETRIES": "three", // a typo is reported, not replaced by the default
	})
	var fileEnv *synapse.Env // no env file
	explicitEnv := synapse.NewEnv(map[string]any{"DEBUG": "Yes", "RATIO": 0.25})

	env := synapse.MergeEnv(osEnv, configEnv, fileEnv, explicitEnv)

	fmt.Println("keys:", env.Keys())
	fmt.Println("host:", env.GetString("HOST", "localhost"))
	fmt.Println("region:", env.GetString("REGION", "us-east"))

	port, err := env.GetInt("PORT", 80)
	fmt.Println("port:", port, err)
	debug, err := env.GetBool("DEBUG", false)
	fmt.Println("debug:", debug, err)
	ratio, err := env.GetFloat("RATIO", 1)
	fmt.Println("ratio:", ratio, err)
	tags, err := env.GetList("TAGS", nil)
	fmt.Printf("tags: %q %v\n", tags, err)
	retries, err := env.GetInt("RETRIES", 3)
	fmt.Println("retries:", retries)
	fmt.Println("error:", err)
	// Output:
	// keys: [DEBUG HOST PORT RATIO RETRIES TAGS]
	// host: os.example.com
	// region: us-east
	// port: 9000 <nil>
	// debug: true <nil>
	// ratio: 0.25 <nil>
	// tags: ["gpu" "fast" "eu"] <nil>
	// retries: 3
	// error: read env RETRIES: cannot convert "three" to an integer
}
