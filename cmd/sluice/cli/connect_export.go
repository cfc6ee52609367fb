package cli

import "fmt"

// ReadConnectorFile reads a connector definition as `sluice connect create
// -f` does (Kafka's POST body, a bare config object, or a .properties
// file) and returns its config with "name" set, for the worker's
// standalone mode, which takes the same files on its command line.
func ReadConnectorFile(path string) (map[string]string, error) {
	f, err := readConnectorFile(path)
	if err != nil {
		return nil, err
	}
	if f.name == "" {
		return nil, fmt.Errorf("%s: the connector has no name", path)
	}
	if f.config == nil {
		f.config = map[string]string{}
	}
	f.config["name"] = f.name
	return f.config, nil
}
