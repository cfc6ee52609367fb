package broker

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
)

func (b *Broker) handleDescribeConfigs(req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			mt, ok := b.metaImage().Topic(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			for _, e := range b.cfg.DescribeTopicConfig(mt.Configs) {
				if want(e.Name) {
					sr.Configs = append(sr.Configs, topicConfigEntry(req, e))
				}
			}
		case kmsg.ConfigResourceTypeBroker:
			// As Kafka: this broker's settings under its id, with the
			// dynamic ones in front; under "" only the cluster-wide
			// dynamic defaults.
			self := strconv.Itoa(int(b.cfg.NodeID))
			var entries []config.Entry
			switch img := b.metaImage(); rr.ResourceName {
			case self:
				entries = b.cfg.DescribeWith(b.dynamicConfigs(img))
			case "":
				entries = b.cfg.DescribeClusterDefaults(img.BrokerConfigs(""))
			default:
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = kmsg.StringPtr("unexpected broker id, expected " + self + " or empty string, but received " + rr.ResourceName)
			}
			for _, e := range entries {
				if want(e.Name) {
					sr.Configs = append(sr.Configs, brokerConfigEntry(req, e))
				}
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = kmsg.StringPtr("unsupported resource type " + strconv.Itoa(int(rr.ResourceType)))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func topicConfigEntry(req *kmsg.DescribeConfigsRequest, e config.TopicEntry) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value = e.Name, kmsg.StringPtr(e.Value)
	c.ReadOnly, c.IsSensitive = e.ReadOnly, e.Sensitive
	c.Source = kmsg.ConfigSource(e.Source)
	c.IsDefault = e.Source == config.SourceDefaultConfig // v0 only
	c.ConfigType = kmsg.ConfigType(e.Type.KafkaType())
	if req.IncludeDocumentation {
		c.Documentation = kmsg.StringPtr(e.Doc)
	}
	if req.IncludeSynonyms {
		for _, s := range e.Synonyms {
			sc := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			sc.Name, sc.Value, sc.Source = s.Name, kmsg.StringPtr(s.Value), kmsg.ConfigSource(s.Source)
			c.ConfigSynonyms = append(c.ConfigSynonyms, sc)
		}
	}
	return c
}

func brokerConfigEntry(req *kmsg.DescribeConfigsRequest, e config.Entry) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = e.Name
	if !e.Null && !e.Sensitive {
		c.Value = kmsg.StringPtr(e.Value)
	}
	c.ReadOnly, c.IsSensitive = e.ReadOnly, e.Sensitive
	c.Source = kmsg.ConfigSource(e.Source)
	c.IsDefault = e.Source == config.SourceDefaultConfig
	c.ConfigType = kmsg.ConfigType(e.Type.KafkaType())
	if req.IncludeDocumentation {
		c.Documentation = kmsg.StringPtr(e.Doc)
	}
	if req.IncludeSynonyms && !e.Sensitive {
		for _, s := range e.Synonyms {
			sc := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			sc.Name, sc.Value, sc.Source = s.Name, kmsg.StringPtr(s.Value), kmsg.ConfigSource(s.Source)
			c.ConfigSynonyms = append(c.ConfigSynonyms, sc)
		}
	}
	return c
}

func init() {
	register(api{key: kmsg.DescribeConfigs, min: 0, max: 4,
		handle: method((*Broker).handleDescribeConfigs),
		errorCodes: codes(func(r *kmsg.DescribeConfigsResponse, count func(int16)) {
			for _, res := range r.Resources {
				count(res.ErrorCode)
			}
		}),
	})
}
