// Command postgrescdc is the PostgreSQL change-data-capture source: it
// streams a database's row changes into topics through logical replication
// (the pgoutput plugin, read with jackc/pglogrepl), without a JVM, in
// Debezium's event format and with Debezium's config names, so a Debezium
// PostgresConnector config posts unchanged. make build puts it in
// bin/plugins, where a worker finds it by default.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(connector{})
}
