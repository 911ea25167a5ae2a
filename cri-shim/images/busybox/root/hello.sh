#!/bin/sh
echo "hello from $(hostname) - you are in $(pwd)"
