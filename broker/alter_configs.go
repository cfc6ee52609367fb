package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
)

// errBrokerConfigReadOnly answers attempts to change broker settings at run
// time: every broker setting is static for now (restart to change it).
var errBrokerConfigReadOnly = fmt.Errorf("%w: broker settings are static; change the properties file and restart", kerr.InvalidRequest)

// handleAlterConfigs replaces a topic's whole set of overrides (the legacy,
// non-incremental API: settings not named go back to their defaults).
func (b *Broker) handleAlterConfigs(req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value == nil {
					return nil, fmt.Errorf("%w: %s: null value", config.ErrInvalidConfig, c.Name)
				}
				next[c.Name] = *c.Value
			}
			return next, nil
		})
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterResource routes one resource of AlterConfigs or
// IncrementalAlterConfigs; change computes a topic's new overrides.
func (b *Broker) alterResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		return b.alterTopicConfigs(name, validateOnly, change)
	case kmsg.ConfigResourceTypeBroker:
		return errBrokerConfigReadOnly
	default:
		return fmt.Errorf("%w: unsupported resource type %d", kerr.InvalidRequest, typ)
	}
}

// alterTopicConfigs computes a topic's new overrides with change, validates
// every one of them, then persists and applies them unless validateOnly.
func (b *Broker) alterTopicConfigs(name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) error {
	mt, ok := b.metaImage().Topic(name)
	if !ok {
		return fmt.Errorf("topic %q: %w", name, controller.ErrUnknownTopic)
	}
	next, err := change(mt.Configs)
	if err != nil {
		return err
	}
	if err := clientMayReconfigure(name, mt.Configs, next); err != nil {
		b.logRefusal("AlterConfigs", name, err)
		return err
	}
	for k, v := range next {
		if err := config.ValidateTopicConfig(k, v); err != nil {
			return err
		}
	}
	if _, err := b.cfg.TopicConfig(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanTopicConfigs(name, next) }); err != nil {
		return err
	}
	if err := b.applyImage()[name]; err != nil {
		return err
	}
	b.logger.Info("topic config changed", "topic", name, "configs", next)
	return nil
}

var errNotAList = errors.New("APPEND and SUBTRACT apply only to list settings")

func init() {
	register(api{key: kmsg.AlterConfigs, min: 0, max: 2, forward: true,
		handle: method((*Broker).handleAlterConfigs),
		errorCodes: codes(func(r *kmsg.AlterConfigsResponse, count func(int16)) {
			for _, res := range r.Resources {
				count(res.ErrorCode)
			}
		}),
	})
}
