// Command postgressink is the PostgreSQL sink plugin: it writes records
// into PostgreSQL tables with insert, upsert (INSERT … ON CONFLICT),
// update and delete on tombstone, creates and evolves tables from record
// schemas, loads batches with COPY, unwraps Debezium change events, and is
// exactly-once: each batch's rows and the next offset of every partition
// commit in one transaction, and a task resumes from the offsets stored in
// the database. It takes Confluent's JDBC sink configs unchanged
// (io.confluent.connect.jdbc.JdbcSinkConnector is an alias).
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(connector{})
}
