# An IAM user for the coordinator, allowed only to put metric data: it publishes the
# queue-size metric the executors' alarms follow.

resource "aws_iam_user" "metric_writer" {
  name                 = "${var.resource_prefix}-sg-metric-writer"
  permissions_boundary = var.permissions_boundary_arn != "" ? var.permissions_boundary_arn : null
}

resource "aws_iam_user_policy" "metric_writer" {
  name = "put-metric-data"
  user = aws_iam_user.metric_writer.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "cloudwatch:PutMetricData"
      Resource = "*"
    }]
  })
}

resource "aws_iam_access_key" "metric_writer" {
  user = aws_iam_user.metric_writer.name
}
