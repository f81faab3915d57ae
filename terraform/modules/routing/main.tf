# The routing declaration (contracts/routing.yaml), read the way relay_ops.routing reads it: the
# same file builds the local topology (ops/src/relay_ops/stack/topology.py) and the one on AWS. This
# module creates nothing; it only computes names, queue settings and rules.

locals {
  routing  = yamldecode(file(var.routing_file))
  events   = local.routing.events
  defaults = local.routing.queue_defaults

  # Queue id -> queue: "<service>" for a main queue, "<service>-control" for a control queue
  # (relay_ops.stack.topology.queue_id). A service with nothing to consume has no queue.
  queues = merge(
    {
      for service, routes in local.routing.services : service => {
        service  = service
        kind     = "main"
        consumes = routes.consumes
        settings = merge(local.defaults, try(routes.queue, {}))
      } if length(try(routes.consumes, [])) > 0
    },
    {
      for service, routes in local.routing.services : "${service}-control" => {
        service  = service
        kind     = "control"
        consumes = routes.control.consumes
        settings = merge(local.defaults, try(routes.control.queue, {}))
      } if length(try(routes.control.consumes, [])) > 0
    },
  )

  # One rule per (queue, producer): the events that queue takes from that producer, matched on
  # the producer's source (relay.<producer>) and the events' detail-type (Rule.pattern()).
  rules = merge([
    for queue_id, queue in local.queues : {
      for producer in distinct([for event in queue.consumes : local.events[event].producer]) :
      "${queue_id}-from-${producer}" => {
        name     = "relay-${var.env}-${queue_id}-from-${producer}"
        consumer = queue.service
        queue_id = queue_id
        producer = producer
        events   = [for event in queue.consumes : event if local.events[event].producer == producer]
      }
    }
  ]...)

  producers = distinct([for event in local.events : event.producer])
}
