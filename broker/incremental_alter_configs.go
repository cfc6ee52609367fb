package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
)

// handleIncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT to
// individual topic settings or dynamic broker settings (KIP-339), leaving
// the others alone.
func (b *Broker) handleIncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		kind := topicSettings(b.cfg)
		if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
			kind = brokerSettings
		}
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			return applyIncremental(kind, cur, rr.Configs)
		})
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// settingKind is what IncrementalAlterConfigs needs to know of the
// settings of a resource type.
type settingKind struct {
	known  func(name string) bool                            // a setting of this kind
	isList func(name string) bool                            // APPEND and SUBTRACT apply
	items  func(cur map[string]string, name string) []string // a list's effective items
}

func topicSettings(cfg *config.Broker) settingKind {
	return settingKind{known: config.IsTopicConfig, isList: config.IsListTopicConfig,
		items: func(cur map[string]string, name string) []string { return currentList(cfg, cur, name) }}
}

// brokerSettings lets any name through: alterBrokerConfigs refuses the
// unknown and the static ones with Kafka's message. No dynamic broker
// setting is a list.
var brokerSettings = settingKind{known: func(string) bool { return true }, isList: func(string) bool { return false }}

func applyIncremental(kind settingKind, cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	next := map[string]string{}
	for k, v := range cur {
		next[k] = v
	}
	for _, op := range ops {
		if !kind.known(op.Name) {
			return nil, fmt.Errorf("%w: unknown topic setting %q", config.ErrInvalidConfig, op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, fmt.Errorf("%w: %s: SET needs a value", config.ErrInvalidConfig, op.Name)
			}
			next[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !kind.isList(op.Name) {
				return nil, fmt.Errorf("%w: %s: %v", config.ErrInvalidConfig, op.Name, errNotAList)
			}
			items := kind.items(next, op.Name)
			for _, v := range splitList(op.Value) {
				i := slices.Index(items, v)
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					items = append(items, v)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					items = slices.Delete(items, i, i+1)
				}
			}
			next[op.Name] = strings.Join(items, ",")
		default:
			return nil, fmt.Errorf("%w: unknown operation %d", kerr.InvalidRequest, op.Op)
		}
	}
	return next, nil
}

// currentList is a list setting's effective items: the override if any,
// else the broker's default.
func currentList(cfg *config.Broker, overrides map[string]string, name string) []string {
	for _, e := range cfg.DescribeTopicConfig(overrides) {
		if e.Name == name {
			return splitList(&e.Value)
		}
	}
	return nil
}

func splitList(v *string) []string {
	if v == nil {
		return nil
	}
	var out []string
	for _, s := range strings.Split(*v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func init() {
	register(api{key: kmsg.IncrementalAlterConfigs, min: 0, max: 1, forward: true,
		handle: method((*Broker).handleIncrementalAlterConfigs),
		errorCodes: codes(func(r *kmsg.IncrementalAlterConfigsResponse, count func(int16)) {
			for _, res := range r.Resources {
				count(res.ErrorCode)
			}
		}),
	})
}
