//go:build integration

package store

// The integration build needs PostgreSQL: scripts/test-integration.sh
// starts one and sets SYNAPSE_TEST_POSTGRES_DSN.
func init() { requirePostgres = true }
