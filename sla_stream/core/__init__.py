"""The pure SLA domain: no Faust, no Kafka, no HTTP, no wall clock."""
