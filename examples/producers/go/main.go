// A Kafka-native signalbox producer in Go, with a schema registry (docs/producers.md).
//
// It registers schemas/avro/event.avsc under the subject "signalbox.Event" (the record's
// full name: RecordNameStrategy), encodes one payment.failed event with hamba/avro,
// frames it in the Confluent wire format (0x00, 4-byte big-endian schema id, datum) and
// produces it to events.billing keyed by customer_id, with acks=all and idempotence.
//
//	go run . -brokers 127.0.0.1:9092 -registry http://127.0.0.1:8081 \
//	    -schema ../../../schemas/avro/event.avsc [-topic-prefix ""] [-event-id evt_go_1]
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

const subject = "signalbox.Event"

// register returns the registry's id for the schema (registering it if it is new).
func register(registry, schemaText string) (uint32, error) {
	body, _ := json.Marshal(map[string]string{"schema": schemaText, "schemaType": "AVRO"})
	url := strings.TrimRight(registry, "/") + "/subjects/" + subject + "/versions"
	resp, err := http.Post(url, "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var answer struct {
		ID      uint32 `json:"id"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("registry answered %d: %s", resp.StatusCode, answer.Message)
	}
	return answer.ID, nil
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers")
	registry := flag.String("registry", "http://127.0.0.1:8081", "Confluent-compatible registry URL")
	schemaPath := flag.String("schema", "../../../schemas/avro/event.avsc", "event.avsc")
	prefix := flag.String("topic-prefix", "", "SIGNALBOX_TOPIC_PREFIX of the installation")
	eventID := flag.String("event-id", "evt_go_1", "the event's id (same id = same occurrence)")
	flag.Parse()

	schemaText, err := os.ReadFile(*schemaPath)
	if err != nil {
		log.Fatal(err)
	}
	schema, err := avro.Parse(string(schemaText))
	if err != nil {
		log.Fatal(err)
	}
	schemaID, err := register(*registry, string(schemaText))
	if err != nil {
		log.Fatal(err)
	}

	now := time.Now().UTC()
	customerID := "cus_go_42"
	email := "ada@example.com"
	event := map[string]any{
		"event_id":    *eventID,
		"customer_id": customerID,
		"occurred_at": now.Add(-time.Minute), // when it happened
		"received_at": now,                   // when it is produced
		"source":      "go-billing",
		"customer":    map[string]any{"signalbox.CustomerProfile": map[string]any{"email": &email}},
		"attributes":  map[string]any{"plan_tier": "gold"},
		// The payload union: the branch is named by the record's full name (namespace
		// signalbox.events; docs/events.md lists every type's record).
		"payload": map[string]any{"signalbox.events.PaymentFailed": map[string]any{
			"payment_id":   "pay_go_1",
			"invoice_id":   nil,
			"product":      "pro",
			"amount_minor": int64(4900),
			"currency":     "EUR",
			"reason":       "card_declined",
		}},
	}
	datum, err := avro.Marshal(schema, event)
	if err != nil {
		log.Fatal(err)
	}
	value := make([]byte, 5, 5+len(datum))
	binary.BigEndian.PutUint32(value[1:5], schemaID) // value[0] = 0x00: Confluent magic
	value = append(value, datum...)

	client, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	record := &kgo.Record{Topic: *prefix + "events.billing", Key: []byte(customerID), Value: value}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.ProduceSync(ctx, record).FirstErr(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("produced %s to %s (schema id %d, partition %d, offset %d)\n",
		*eventID, record.Topic, schemaID, record.Partition, record.Offset)
}
