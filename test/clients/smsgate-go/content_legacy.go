//go:build legacy

package main

import (
	"context"
	"errors"

	"github.com/android-sms-gateway/client-go/smsgateway"
)

// textMessage is a text to the numbers as client-go v1.6 sends it: `message`.
func textMessage(text string, numbers []string) smsgateway.Message {
	return smsgateway.Message{Message: text, PhoneNumbers: numbers}
}

// listDevices is not in client-go v1.6.
func listDevices(_ context.Context, _ *smsgateway.Client) (any, error) {
	return nil, errors.New("client-go v1.6 cannot list devices")
}
