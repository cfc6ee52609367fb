package sdk

import "maps"

// SameTaskConfigs is the TaskConfigs of a sink connector whose tasks all
// run the connector's config: max(maxTasks, 1) copies of cfg. The worker's
// consumer group spreads the topics' partitions between the tasks, so
// nothing in the config needs to differ. Each copy is its own map.
func SameTaskConfigs(cfg map[string]string, maxTasks int) []map[string]string {
	out := make([]map[string]string, max(maxTasks, 1))
	for i := range out {
		out[i] = maps.Clone(cfg)
		if out[i] == nil {
			out[i] = map[string]string{}
		}
	}
	return out
}
