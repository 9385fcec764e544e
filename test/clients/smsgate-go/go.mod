module smsgw/test/clients/smsgate-go

go 1.22.0

require github.com/android-sms-gateway/client-go v1.14.4
