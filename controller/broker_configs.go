package controller

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
)

// Dynamic broker configs, as KRaft keeps them: ConfigRecords of resource
// type BROKER, named after a broker id for that broker's own values or ""
// for the cluster-wide default. Every broker follows the metadata log, so
// every broker sees every change and applies those meant for it; the
// snapshot keeps them across restarts. Which settings may be dynamic and
// which values are valid is the broker's business (config.
// ValidateDynamicBrokerConfig), checked before a change is planned, as for
// topic configs.

// ConfigResourceBroker is the broker resource type of Kafka's ConfigRecord.
const ConfigResourceBroker int8 = 4

// ErrInvalidBrokerResource is a broker config resource that names no
// broker: neither a broker id nor "" (the cluster default).
var ErrInvalidBrokerResource = errors.New("invalid broker config resource")

// ValidateBrokerResource checks a BROKER resource name: "" (the cluster
// default) or a non-negative broker id in decimal, as Kafka's
// ControllerConfigurationValidator requires. The broker need not be
// registered: an operator may configure it before it first starts.
func ValidateBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || id < 0 || strconv.FormatInt(id, 10) != name {
		return fmt.Errorf("%w: node id must be an integer, but it is: %q", ErrInvalidBrokerResource, name)
	}
	return nil
}

// applyBrokerConfig sets or removes one dynamic broker setting.
func (s *State) applyBrokerConfig(r ConfigRecord) error {
	if err := ValidateBrokerResource(r.ResourceName); err != nil {
		return err
	}
	if r.Name == "" {
		return fmt.Errorf("broker %q: empty config name", r.ResourceName)
	}
	cur := s.BrokerConfigs[r.ResourceName]
	if r.Value == nil {
		delete(cur, r.Name)
		if len(cur) == 0 {
			delete(s.BrokerConfigs, r.ResourceName)
		}
		if len(s.BrokerConfigs) == 0 {
			s.BrokerConfigs = nil
		}
		return nil
	}
	if s.BrokerConfigs == nil {
		s.BrokerConfigs = map[string]map[string]string{}
	}
	if cur == nil {
		cur = map[string]string{}
		s.BrokerConfigs[r.ResourceName] = cur
	}
	cur[r.Name] = *r.Value
	return nil
}

// PlanBrokerConfigs replaces the dynamic settings of resource (a broker
// id, or "" for the cluster default) with configs: one ConfigRecord per
// key that changes, in key order.
func (s *State) PlanBrokerConfigs(resource string, configs map[string]string) ([]Record, error) {
	if err := ValidateBrokerResource(resource); err != nil {
		return nil, err
	}
	for k := range configs {
		if k == "" {
			return nil, fmt.Errorf("broker %q: empty config name", resource)
		}
	}
	rs := s.configRecords(resource, s.BrokerConfigs[resource], configs)
	// configRecords words topic records; the same diff, for a broker.
	for i, r := range rs {
		c := r.(ConfigRecord)
		c.ResourceType = ConfigResourceBroker
		rs[i] = c
	}
	return rs, nil
}

// BrokerConfigs are the dynamic settings of resource: a broker id, or ""
// for the cluster default; nil when none is set. Read-only, as everything
// an Image returns.
func (img *Image) BrokerConfigs(resource string) map[string]string {
	return img.st.BrokerConfigs[resource]
}

func cloneBrokerConfigs(m map[string]map[string]string) map[string]map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]map[string]string, len(m))
	for k, v := range m {
		c[k] = maps.Clone(v)
	}
	return c
}
