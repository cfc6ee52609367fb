package config

import (
	"fmt"
	"strings"
)

// Markers around the generated part of docs/configuration.md.
const (
	ReferenceBegin = "<!-- BEGIN GENERATED: config reference (make docs) -->"
	ReferenceEnd   = "<!-- END GENERATED -->"
)

// Reference renders the broker and topic setting tables as Markdown. It is
// the generated part of docs/configuration.md; a test keeps the two equal.
func Reference() string {
	var b strings.Builder
	b.WriteString("### Broker settings\n\n")
	b.WriteString("| Setting | Type | Default | Meaning |\n|---|---|---|---|\n")
	for _, s := range brokerSettings {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, typeCell(s), defaultCell(s), cell(s.Doc))
	}
	b.WriteString("\n### Topic settings\n\n")
	b.WriteString("A topic may override these when it is created (CreateTopics) or later " +
		"(AlterConfigs / IncrementalAlterConfigs). Without an override the value comes " +
		"from the broker setting in the second column.\n\n")
	b.WriteString("| Setting | Broker default from | Type | Meaning |\n|---|---|---|---|\n")
	for _, t := range topicSettings {
		from := "`" + t.BrokerSynonym + "`"
		switch t.Name {
		case "retention.ms":
			from = "`log.retention.ms` / `.minutes` / `.hours`"
		case "segment.ms":
			from = "`log.roll.ms` / `log.roll.hours`"
		case "flush.ms":
			from = "`log.flush.interval.ms`, else `log.flush.scheduler.interval.ms`"
		}
		if t.BrokerSynonym == "" {
			from = "(none; default " + defaultCell(t.Setting) + ")"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.Name, from, typeCell(t.Setting), cell(t.Doc))
	}
	return b.String()
}

func typeCell(s Setting) string {
	var b strings.Builder
	b.WriteString(s.Type.String())
	if s.Type == TypeEnum || (s.Type == TypeList && s.Enum != nil) {
		b.WriteString(": " + strings.Join(s.Enum, ", "))
	}
	if s.Min != nil && s.Max != nil {
		fmt.Fprintf(&b, ", %d..%d", *s.Min, *s.Max)
	} else if s.Min != nil {
		fmt.Fprintf(&b, ", ≥ %d", *s.Min)
	}
	return cell(b.String())
}

func defaultCell(s Setting) string {
	switch {
	case s.Default == "" && s.Nullable:
		return "(unset)"
	case s.Default == maxLong && strings.HasSuffix(s.Name, ".rate"):
		return "`" + maxLong + "` (unthrottled)"
	case s.Default == maxLong:
		return "`" + maxLong + "` (never)"
	case s.Default == "":
		return `""`
	}
	return "`" + s.Default + "`"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
