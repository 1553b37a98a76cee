module github.com/adws/eventbus/dashboard

go 1.26.0

replace github.com/adws/eventbus => ../

require github.com/adws/eventbus v0.0.0-00010101000000-000000000000

require github.com/google/uuid v1.6.0 // indirect
