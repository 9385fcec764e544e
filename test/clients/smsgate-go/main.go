// Command smsgate-go-client drives smsgw through SMSGate's own Go client library
// (github.com/android-sms-gateway/client-go), so that a test can show that library working against
// smsgw unchanged. It prints each answer as one line of JSON on stdout and any error on stderr
// (exit code 1). It builds against two releases of the library: v1.14 (go.mod, the current one,
// which sends text as `textMessage`) and v1.6 (go.v1.6.mod with the tag `legacy`, which sends it as
// `message`); scripts/setup-smsgate-go-client.sh builds both.
//
// Environment: ASG_ENDPOINT (the API's base URL, e.g. http://127.0.0.1:3000/3rdparty/v1),
// ASG_USERNAME, ASG_PASSWORD.
//
//	smsgate-go-client send NUMBER[,NUMBER...] TEXT
//	smsgate-go-client state ID
//	smsgate-go-client devices          (v1.14 only)
//	smsgate-go-client webhooks list
//	smsgate-go-client webhooks register ID URL EVENT
//	smsgate-go-client webhooks delete ID
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/android-sms-gateway/client-go/smsgateway"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	client := smsgateway.NewClient(smsgateway.Config{
		BaseURL:  os.Getenv("ASG_ENDPOINT"),
		User:     os.Getenv("ASG_USERNAME"),
		Password: os.Getenv("ASG_PASSWORD"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(args) == 0 {
		return fmt.Errorf("usage: smsgate-go-client send|state|webhooks ...")
	}
	var answer any
	var err error
	switch {
	case args[0] == "send" && len(args) == 3:
		answer, err = client.Send(ctx, textMessage(args[2], strings.Split(args[1], ",")))
	case args[0] == "devices" && len(args) == 1:
		answer, err = listDevices(ctx, client)
	case args[0] == "state" && len(args) == 2:
		answer, err = client.GetState(ctx, args[1])
	case args[0] == "webhooks" && len(args) == 2 && args[1] == "list":
		answer, err = client.ListWebhooks(ctx)
	case args[0] == "webhooks" && len(args) == 5 && args[1] == "register":
		answer, err = client.RegisterWebhook(ctx, smsgateway.Webhook{ID: args[2], URL: args[3], Event: args[4]})
	case args[0] == "webhooks" && len(args) == 3 && args[1] == "delete":
		answer, err = map[string]string{"deleted": args[2]}, client.DeleteWebhook(ctx, args[2])
	default:
		return fmt.Errorf("unknown command: %s", strings.Join(args, " "))
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(answer)
}
