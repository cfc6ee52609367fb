// Package pgjdbc is what Sluice's PostgreSQL connectors share with the
// configs users wrote for Confluent's JDBC connectors: the JDBC
// connection.url with connection.user and connection.password turned into
// a pgx connection config, identifier and table-name quoting, and the
// mapping between Connect schemas and PostgreSQL column types.
//
// Type mapping, Connect → PostgreSQL (ColumnType), as Confluent's
// PostgreSqlDatabaseDialect with Sluice's additions marked *:
//
//	int8, int16      smallint
//	int32            integer
//	int64            bigint
//	float32          real
//	float64          double precision
//	boolean          boolean
//	string           text
//	bytes            bytea
//	Decimal          numeric
//	Date             date
//	Time             time
//	Timestamp        timestamp
//	array of T       T[]  (primitive T)
//	struct, map      jsonb *
//	Debezium's logical types *: io.debezium.time.Date date; Timestamp,
//	  MicroTimestamp, NanoTimestamp timestamp; ZonedTimestamp timestamptz;
//	  Time, MicroTime, NanoTime time; ZonedTime timetz; MicroDuration
//	  interval; io.debezium.data.Json jsonb, Uuid uuid, Xml xml, Enum
//	  text, VariableScaleDecimal numeric
//
// PostgreSQL → Connect (SchemaFor), for a query source:
//
//	smallint                      int16
//	integer, oid                  int32
//	bigint                        int64
//	real                          float32
//	double precision              float64
//	numeric(p,s)                  Decimal with scale s (numeric without a scale: string *)
//	boolean                       boolean
//	text, varchar, char, name,
//	  uuid, json, jsonb, others   string
//	bytea                         bytes
//	date                          Date
//	time, timetz                  Time
//	timestamp, timestamptz        Timestamp
//
// Values go through ToPG (Connect value → what pgx encodes for the column
// type above, Debezium's encodings included) and FromPG (what pgx decodes
// → Connect value).
package pgjdbc

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ParseURL turns a JDBC URL (jdbc:postgresql://host[:port][,host2[:port2]]/db?k=v&...,
// or jdbc:postgresql:db) plus optional user and password (connection.user,
// connection.password; they win over the URL's user and password
// parameters) into a pgx connection config. A postgres:// or postgresql://
// URL is accepted as well. The pgJDBC parameters with a libpq equivalent
// are honoured: user, password, ssl, sslmode, sslcert, sslkey,
// sslrootcert, sslpassword, currentSchema (search_path), ApplicationName,
// connectTimeout (seconds), options, targetServerType; others are ignored
// as pgJDBC ignores unknown ones.
func ParseURL(rawURL, user, password string) (*pgx.ConnConfig, error) {
	kv, err := urlToKeywords(rawURL)
	if err != nil {
		return nil, err
	}
	if user != "" {
		kv["user"] = user
	}
	if password != "" {
		kv["password"] = password
	}
	var b strings.Builder
	for _, k := range []string{"host", "port", "dbname", "user", "password", "sslmode", "sslcert", "sslkey",
		"sslrootcert", "sslpassword", "application_name", "connect_timeout", "options", "search_path", "target_session_attrs"} {
		v, ok := kv[k]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s=%s ", k, quoteKeyword(v))
	}
	cfg, err := pgx.ParseConfig(strings.TrimSpace(b.String()))
	if err != nil {
		return nil, fmt.Errorf("connection.url %s: %w", redact(rawURL), err)
	}
	return cfg, nil
}

// urlToKeywords parses a JDBC or postgres URL into libpq keywords.
func urlToKeywords(raw string) (map[string]string, error) {
	bad := func(why string) error {
		return fmt.Errorf("connection.url %s: %s (want jdbc:postgresql://host:port/database)", redact(raw), why)
	}
	rest, ok := strings.CutPrefix(raw, "jdbc:")
	if !ok && !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return nil, bad("not a JDBC URL")
	}
	if ok {
		sub, r, found := strings.Cut(rest, ":")
		if !found || sub != "postgresql" {
			return nil, bad("only the postgresql subprotocol is supported")
		}
		rest = r
	} else {
		_, rest, _ = strings.Cut(raw, ":")
	}
	query := ""
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i+1:]
	}
	kv := map[string]string{}
	hostPart, db := "", rest
	if r, ok := strings.CutPrefix(rest, "//"); ok {
		hostPart, db, _ = strings.Cut(r, "/")
		if at := strings.LastIndexByte(hostPart, '@'); at >= 0 { // postgres://user:pw@host
			cred := hostPart[:at]
			hostPart = hostPart[at+1:]
			u, p, hasPw := strings.Cut(cred, ":")
			if kv["user"], ok = unescape(u); !ok {
				return nil, bad("bad escape in the user")
			}
			if hasPw {
				if kv["password"], ok = unescape(p); !ok {
					return nil, bad("bad escape in the password")
				}
			}
		}
	} else {
		db = strings.TrimPrefix(db, "/")
	}
	if hostPart != "" {
		var hosts, ports []string
		for _, hp := range strings.Split(hostPart, ",") {
			h, p, err := splitHostPort(hp)
			if err != nil {
				return nil, bad(err.Error())
			}
			hosts, ports = append(hosts, h), append(ports, p)
		}
		kv["host"], kv["port"] = strings.Join(hosts, ","), strings.Join(ports, ",")
	} else {
		kv["host"], kv["port"] = "localhost", "5432"
	}
	if db != "" {
		d, ok := unescape(db)
		if !ok {
			return nil, bad("bad escape in the database name")
		}
		kv["dbname"] = d
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, bad(err.Error())
	}
	for k, vs := range params {
		v := vs[len(vs)-1]
		switch k {
		case "user", "password", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslpassword", "options":
			kv[k] = v
		case "ssl":
			if v == "true" || v == "" {
				if _, set := params["sslmode"]; !set {
					kv["sslmode"] = "verify-full" // pgJDBC: ssl=true means verify-full
				}
			}
		case "ApplicationName":
			kv["application_name"] = v
		case "connectTimeout":
			kv["connect_timeout"] = v
		case "currentSchema":
			kv["search_path"] = v
		case "targetServerType":
			switch v {
			case "primary", "master":
				kv["target_session_attrs"] = "read-write"
			case "secondary", "slave":
				kv["target_session_attrs"] = "standby"
			case "preferSecondary", "preferSlave":
				kv["target_session_attrs"] = "prefer-standby"
			}
		}
	}
	return kv, nil
}

func splitHostPort(hp string) (host, port string, err error) {
	port = "5432"
	if strings.HasPrefix(hp, "[") { // [::1]:5432
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", fmt.Errorf("unclosed [ in host %q", hp)
		}
		host, hp = hp[1:end], hp[end+1:]
		if p, ok := strings.CutPrefix(hp, ":"); ok && p != "" {
			port = p
		}
	} else if h, p, ok := strings.Cut(hp, ":"); ok {
		host = h
		if p != "" {
			port = p
		}
	} else {
		host = hp
	}
	if host == "" {
		host = "localhost"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", "", fmt.Errorf("bad port %q", port)
	}
	return host, port, nil
}

func unescape(s string) (string, bool) {
	u, err := url.PathUnescape(s)
	return u, err == nil
}

// quoteKeyword quotes a libpq keyword value.
func quoteKeyword(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	if i := strings.Index(raw, "password="); i >= 0 {
		end := strings.IndexByte(raw[i:], '&')
		if end < 0 {
			return raw[:i] + "password=xxxxx"
		}
		return raw[:i] + "password=xxxxx" + raw[i+end:]
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		if at := strings.IndexByte(raw[i:], '@'); at >= 0 {
			if c := strings.IndexByte(raw[i+3:i+at], ':'); c >= 0 {
				return raw[:i+3+c] + ":xxxxx" + raw[i+at:]
			}
		}
	}
	return raw
}
