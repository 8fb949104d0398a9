resource "random_id" "suffix" {
  count       = var.randomize_resource_names ? 1 : 0
  byte_length = 2
}

locals {
  suffix         = var.randomize_resource_names ? "-${random_id.suffix[0].hex}" : ""
  role_name      = var.randomize_resource_names ? "${var.resource_prefix}executors${local.suffix}" : "${var.resource_prefix}sourcegraph__executors"
  asg_name       = "${var.resource_prefix}sourcegraph-executors${local.suffix}"
  hook_name      = "${local.asg_name}-drain"
  security_group = var.metrics_access_security_group_id != "" ? var.metrics_access_security_group_id : aws_security_group.metrics_access[0].id
  autoscaling    = var.min_replicas != var.max_replicas
  scaling_directions = {
    scale-out = { adjustment = 1, comparison_operator = "GreaterThanThreshold", description = "The queue needs more executors than the group has." }
    scale-in  = { adjustment = -1, comparison_operator = "LessThanThreshold", description = "The queue needs fewer executors than the group has." }
  }
}

# machine_image, or the latest stock Debian 13 AMI from Debian's cloud team's account.
data "aws_ami" "executor" {
  most_recent = true
  owners      = var.machine_image != "" ? null : ["136693071363"]

  filter {
    name   = var.machine_image != "" ? "image-id" : "name"
    values = [var.machine_image != "" ? var.machine_image : "debian-13-amd64-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }
}

module "startup" {
  source = "../../../shared/executor-install"

  frontend_url                             = var.sourcegraph_external_url
  frontend_password                        = var.sourcegraph_executor_proxy_password
  queue_name                               = var.queue_name
  queue_names                              = var.queue_names
  maximum_runtime_per_job                  = var.maximum_runtime_per_job
  maximum_num_jobs                         = var.maximum_num_jobs
  num_total_jobs                           = var.num_total_jobs
  max_active_time                          = var.max_active_time
  job_num_cpus                             = var.job_num_cpus != "" ? var.job_num_cpus : tostring(var.firecracker_num_cpus)
  job_memory                               = var.job_memory != "" ? var.job_memory : var.firecracker_memory
  firecracker_disk_space                   = var.firecracker_disk_space
  use_firecracker                          = var.use_firecracker
  docker_registry_mirror_urls              = [var.docker_registry_mirror]
  docker_registry_mirror_node_exporter_url = var.docker_registry_mirror_node_exporter_url
  docker_auth_config                       = var.docker_auth_config
  private_ca_cert_path                     = var.private_ca_cert_path
  executor_binary_url                      = var.executor_binary_url
  executor_binary_sha256                   = var.executor_binary_sha256
  runtime                                  = var.runtime
  drain_timeout_seconds                    = var.drain_timeout_seconds
}

resource "aws_iam_role" "ec2-role" {
  name                 = local.role_name
  permissions_boundary = var.permissions_boundary_arn != "" ? var.permissions_boundary_arn : null
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  role       = aws_iam_role.ec2-role.name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.ec2-role.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

# The drain watcher on each instance completes its own termination, and nothing else.
resource "aws_iam_role_policy" "complete-lifecycle-action" {
  name = "complete-lifecycle-action"
  role = aws_iam_role.ec2-role.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "autoscaling:CompleteLifecycleAction"
      Resource = aws_autoscaling_group.autoscaler.arn
    }]
  })
}

resource "aws_iam_instance_profile" "instance" {
  name = local.role_name
  role = aws_iam_role.ec2-role.name
}

resource "aws_security_group" "metrics_access" {
  count  = var.metrics_access_security_group_id == "" ? 1 : 0
  name   = "${var.resource_prefix}SourcegraphExecutorsMetricsAccess${local.suffix}"
  vpc_id = var.vpc_id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.ssh_access_cidr_range]
  }

  egress {
    from_port        = 0
    to_port          = 0
    protocol         = "-1"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }
}

resource "aws_cloudwatch_log_group" "executors" {
  name              = "${var.resource_prefix}executors${local.suffix}"
  retention_in_days = 7
}

resource "aws_launch_template" "executor" {
  name_prefix            = "${var.resource_prefix}executor-template-"
  image_id               = data.aws_ami.executor.id
  instance_type          = var.machine_type
  update_default_version = true
  # An executor that exits by itself powers its machine off; the group replaces it.
  instance_initiated_shutdown_behavior = "terminate"

  block_device_mappings {
    device_name = data.aws_ami.executor.root_device_name
    ebs {
      volume_type           = "gp3"
      volume_size           = var.boot_disk_size
      iops                  = var.boot_disk_iops
      throughput            = var.boot_disk_throughput
      encrypted             = true
      delete_on_termination = true
    }
  }

  network_interfaces {
    associate_public_ip_address = var.assign_public_ip
    subnet_id                   = var.subnet_id
    security_groups             = [local.security_group]
  }

  # IMDSv2 only, one hop: a container on the host cannot reach the instance's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  dynamic "instance_market_options" {
    for_each = var.preemptible_machines ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type = "one-time"
      }
    }
  }

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  user_data = base64encode(templatefile("${path.module}/startup-script.sh.tpl", {
    install_executor    = module.startup.script
    asg_name            = local.asg_name
    lifecycle_hook_name = local.hook_name
    drain_watch_b64     = base64encode(file("${path.module}/drain-watch.sh"))
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = local.asg_name }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_autoscaling_group" "autoscaler" {
  name                      = local.asg_name
  min_size                  = var.min_replicas
  max_size                  = var.max_replicas
  vpc_zone_identifier       = [var.subnet_id]
  health_check_grace_period = 300
  enabled_metrics = [
    "GroupDesiredCapacity", "GroupInServiceCapacity", "GroupPendingCapacity", "GroupMinSize",
    "GroupMaxSize", "GroupInServiceInstances", "GroupPendingInstances", "GroupStandbyInstances",
    "GroupStandbyCapacity", "GroupTerminatingCapacity", "GroupTerminatingInstances",
    "GroupTotalCapacity", "GroupTotalInstances",
  ]

  launch_template {
    id      = aws_launch_template.executor.id
    version = "$Latest"
  }

  tag {
    key                 = "executor_tag"
    value               = var.instance_tag
    propagate_at_launch = true
  }

  tag {
    key                 = "name"
    value               = local.asg_name
    propagate_at_launch = true
  }

  lifecycle {
    # The alarms' policies own the desired capacity.
    ignore_changes = [desired_capacity]
  }
}

# Termination waits for the instance's drain: executor-drain-watch completes this hook after
# the executor stopped, or the timeout lets the termination go on.
resource "aws_autoscaling_lifecycle_hook" "drain" {
  name                   = local.hook_name
  autoscaling_group_name = aws_autoscaling_group.autoscaler.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.drain_timeout_seconds
  default_result         = "CONTINUE"
}

# Only when the group may change size: one alarm and one simple-scaling policy per direction,
# each comparing the executors the queue needs, ceil(queue size / jobs_per_instance_scaling),
# with the executors there are, and adding or removing one.
resource "aws_autoscaling_policy" "scaling" {
  for_each               = local.autoscaling ? local.scaling_directions : {}
  name                   = "${local.asg_name}-${each.key}"
  autoscaling_group_name = aws_autoscaling_group.autoscaler.name
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = each.value.adjustment
  policy_type            = "SimpleScaling"
}

resource "aws_cloudwatch_metric_alarm" "scaling" {
  for_each            = local.autoscaling ? local.scaling_directions : {}
  alarm_name          = "${local.asg_name}-${each.key}"
  alarm_description   = each.value.description
  comparison_operator = each.value.comparison_operator
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  alarm_actions       = [aws_autoscaling_policy.scaling[each.key].arn]

  metric_query {
    id = "queueSize"
    metric {
      metric_name = "src_executors_queue_size"
      namespace   = "sourcegraph-executor"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        environment = var.metrics_environment_label
        queueName   = module.startup.queue_label
      }
    }
  }

  metric_query {
    id = "instanceCount"
    metric {
      metric_name = "GroupTotalInstances"
      namespace   = "AWS/AutoScaling"
      period      = 60
      stat        = "Maximum"
      dimensions  = { AutoScalingGroupName = aws_autoscaling_group.autoscaler.name }
    }
  }

  metric_query {
    id          = "exceeding"
    expression  = "CEIL(queueSize / ${var.jobs_per_instance_scaling}) - instanceCount"
    return_data = true
  }
}
