// Command jdbcsource is the plugin for the JDBC-style query source for
// PostgreSQL: Confluent's JdbcSourceConnector (its class name is an
// alias, its config keys are ours) reading tables or a custom query in
// bulk, incrementing, timestamp or timestamp+incrementing mode, with
// offsets per table in Confluent's shape. make build puts it in
// bin/plugins, where a worker finds it by default.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(connector{})
}
