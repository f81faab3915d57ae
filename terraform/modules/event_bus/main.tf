# The domain event bus and an archive of every event on it (replay after a bad deploy).

resource "aws_cloudwatch_event_bus" "this" {
  name = var.name
  tags = var.tags
}

resource "aws_cloudwatch_event_archive" "this" {
  count = var.archive_retention_days == null ? 0 : 1

  name             = var.name
  description      = "Every event on ${var.name}, kept ${var.archive_retention_days} days for replay."
  event_source_arn = aws_cloudwatch_event_bus.this.arn
  retention_days   = var.archive_retention_days
}
