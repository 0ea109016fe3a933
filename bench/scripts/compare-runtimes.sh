#!/usr/bin/env bash
# camshard on io_uring (A, port 8002) vs camshard on epoll (B, port 9002): the same release binary
# started with `--runtime uring` and `--runtime epoll`, three interleaved rounds per ladder step
# (ROUNDS); the table gives the median A/B ratios.
exec env RUNTIME_A=uring RUNTIME_B=epoll LABEL_A=io_uring LABEL_B=epoll ROUNDS="${ROUNDS:-3}" \
  LABEL="camshard on io_uring vs camshard on epoll" "$(dirname "$0")/compare-camshard.sh"
