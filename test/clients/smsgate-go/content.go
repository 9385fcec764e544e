//go:build !legacy

package main

import (
	"context"

	"github.com/android-sms-gateway/client-go/smsgateway"
)

// textMessage is a text to the numbers as client-go v1.14 sends it: `textMessage`.
func textMessage(text string, numbers []string) smsgateway.Message {
	return smsgateway.Message{TextMessage: &smsgateway.TextMessage{Text: text}, PhoneNumbers: numbers}
}

// listDevices lists the account's phones (client-go v1.14's ListDevices).
func listDevices(ctx context.Context, client *smsgateway.Client) (any, error) {
	return client.ListDevices(ctx)
}
