#!/bin/bash
# ARP's tutorial arp_submit.sh (/reg/g/psdm/tutorials/batchprocessing), as batchman runs it.
# Site lines stay as they were (set ABS_PATH and the environment to yours, as for ARP):
[ -f /reg/g/psdm/etc/psconda.sh ] && source /reg/g/psdm/etc/psconda.sh
ABS_PATH=$(dirname "$(readlink -f "$0")")
# The ONE changed line. ARP ran this script on a submit host, so it called sbatch:
#   sbatch --nodes=2 --partition=psanaq --time=5 --output="arp_example_${RUN_NUM}_%j.log" $ABS_PATH/arp_actual.py "$@"
# batchman submits this script itself (partition, time, account and log are in batchman.yaml),
# so on the batch node it only has to run the analysis:
exec $ABS_PATH/arp_actual.py "$@"
