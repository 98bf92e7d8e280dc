"""Pure parts of the Grid Engine backend, fed output captured from the real one-node cluster
(contrib/gridengine/start.sh: Son of Grid Engine 8.1.9, Debian 12, as root; 2026-11-22).

The literals below are byte for byte what the commands printed (trailing blanks included).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess

import pytest

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING, BackendUnavailable, JobSpec, Rejected,
)
from batchman.backends.batch.gridengine import (
    GridEngineBackend, build_qacct_argv, build_qsub_argv, is_outage, map_accounting, map_state,
    name_pattern, parse_category_requests, parse_duration, parse_qacct, parse_qstat_j_errors,
    parse_qstat_xml, parse_qsub_output, parse_size, pick_record,
)

# qstat -xml -u root: two running (one an array task), pending, -pe smp 2, Eqw, array range 2,3, held
QSTAT_MIXED = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>9</JB_job_number>
      <JAT_prio>0.25014</JAT_prio>
      <JB_name>bm.cap.run1</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-22T22:39:05</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="running">
      <JB_job_number>13</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.cap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-22T22:39:08</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>1</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>10</JB_job_number>
      <JAT_prio>0.75000</JAT_prio>
      <JB_name>bm.cap.pe2</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-22T22:39:05</JB_submission_time>
      <queue_name></queue_name>
      <slots>2</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>12</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.cap.eqw</JB_name>
      <JB_owner>root</JB_owner>
      <state>Eqw</state>
      <JB_submission_time>2026-11-22T22:39:06</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>13</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.cap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-22T22:39:06</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>2,3</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>11</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>bm.cap.held</JB_name>
      <JB_owner>root</JB_owner>
      <state>hqw</state>
      <JB_submission_time>2026-11-22T22:39:06</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""

# qstat -xml -u root right after qdel of a running job (dr), three pending
QSTAT_DELETING = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>9</JB_job_number>
      <JAT_prio>0.25111</JAT_prio>
      <JB_name>bm.cap.run1</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-22T22:39:05</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="running">
      <JB_job_number>17</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.cap.qdel</JB_name>
      <JB_owner>root</JB_owner>
      <state>dr</state>
      <JAT_start_time>2026-11-22T22:39:24</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>10</JB_job_number>
      <JAT_prio>0.75000</JAT_prio>
      <JB_name>bm.cap.pe2</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-22T22:39:05</JB_submission_time>
      <queue_name></queue_name>
      <slots>2</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>18</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.cap.badout</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-22T22:39:13</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>19</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.cap.badshell</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-22T22:39:13</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""

# qstat -xml -u root with a job suspended by qmod -sj
QSTAT_SUSPENDED = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>28</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>bm.cap.susp</JB_name>
      <JB_owner>root</JB_owner>
      <state>s</state>
      <JAT_start_time>2026-11-22T22:41:51</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>18</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>bm.cap.badout</JB_name>
      <JB_owner>root</JB_owner>
      <state>Eqw</state>
      <JB_submission_time>2026-11-22T22:39:13</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>19</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>bm.cap.badshell</JB_name>
      <JB_owner>root</JB_owner>
      <state>Eqw</state>
      <JB_submission_time>2026-11-22T22:39:13</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""

# qstat -xml -u nobody (rc 0)
QSTAT_EMPTY = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
  </queue_info>
  <job_info>
  </job_info>
</job_info>
"""

# qstat -j 12,11: 11 held (hqw), 12 in Eqw (-wd /nonexistent)
QSTAT_J_HELD_EQW = """\
==============================================================
job_number:                 11
exec_file:                  job_scripts/11
submission_time:            Sun Nov 22 22:39:06 2026
owner:                      root
uid:                        0
group:                      root
gid:                        0
sge_o_home:                 /root
sge_o_path:                 /root/.cargo/bin:/root/.cargo/bin:/root/.pyenv/plugins/pyenv-virtualenv/shims:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
sge_o_shell:                /bin/bash
sge_o_workdir:              /tmp/getest
sge_o_host:                 localhost
account:                    sge
cwd:                        /tmp/getest
stderr_path_list:           NONE:NONE:/tmp/getest/cap
mail_list:                  root@vm
notify:                     FALSE
job_name:                   bm.cap.held
stdout_path_list:           NONE:NONE:/tmp/getest/cap
jobshare:                   0
shell_list:                 NONE:/bin/bash
env_list:                   TERM=NONE
job_args:                   1
script_file:                sleep.sh
binding:                    NONE
job_type:                   NONE
scheduling info:            queue instance "all.q@vm" dropped because it is full
                            All queues dropped because of overload or full
                            Job is in hold state
==============================================================
job_number:                 12
exec_file:                  job_scripts/12
submission_time:            Sun Nov 22 22:39:06 2026
owner:                      root
uid:                        0
group:                      root
gid:                        0
sge_o_home:                 /root
sge_o_path:                 /root/.cargo/bin:/root/.cargo/bin:/root/.pyenv/plugins/pyenv-virtualenv/shims:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
sge_o_shell:                /bin/bash
sge_o_workdir:              /tmp/getest
sge_o_host:                 localhost
account:                    sge
cwd:                        /nonexistent
stderr_path_list:           NONE:NONE:/tmp/getest/cap
mail_list:                  root@vm
notify:                     FALSE
job_name:                   bm.cap.eqw
stdout_path_list:           NONE:NONE:/tmp/getest/cap
jobshare:                   0
shell_list:                 NONE:/bin/bash
env_list:                   TERM=NONE
job_args:                   1
script_file:                sleep.sh
binding:                    NONE
job_type:                   NONE
error reason          1:      11/22/2026 22:39:06 [0:12534]: error: can't chdir to /nonexistent: No such file or directory
scheduling info:            queue instance "all.q@vm" dropped because it is full
                            All queues dropped because of overload or full
                            Job is in error state
"""

# qacct -j 9: sleep 20, ok
QACCT_OK = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.run1         
jobnumber    9                   
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:05 2026
start_time   Sun Nov 22 22:39:05 2026
end_time     Sun Nov 22 22:39:26 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 21s
ru_utime     0.092s
ru_stime     0.034s
ru_maxrss    4.461KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15108               
ru_majflt    3                   
ru_nswap     0                   
ru_inblock   48                  
ru_oublock   24                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     262                 
ru_nivcsw    109                 
cpu          0.126s
mem          0.000Bs
io           804.258KB
iow          0.000s
maxvmem      8.102MB
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 14: script exit 3
QACCT_EXIT3 = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.exit3        
jobnumber    14                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:13 2026
start_time   Sun Nov 22 22:39:17 2026
end_time     Sun Nov 22 22:39:17 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  3                   
ru_wallclock 0s
ru_utime     0.087s
ru_stime     0.027s
ru_maxrss    4.480KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15052               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   8                   
ru_oublock   48                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     257                 
ru_nivcsw    54                  
cpu          0.114s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 15: -l h_rt=0:0:3, sleep 60
QACCT_H_RT = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.hrt          
jobnumber    15                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:13 2026
start_time   Sun Nov 22 22:39:18 2026
end_time     Sun Nov 22 22:39:22 2026
granted_pe   NONE                
slots        1                   
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
ru_wallclock 4s
ru_utime     0.078s
ru_stime     0.043s
ru_maxrss    4.594KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15210               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   40                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     258                 
ru_nivcsw    60                  
cpu          0.121s
mem          0.000Bs
io           628.097KB
iow          0.000s
maxvmem      5.105MB
arid         undefined
ar_sub_time  undefined
category     -l h_rt=3
"""

# qacct -j 29: -l h_rt=3,h_vmem=500M -pe smp 2, sleep 60
QACCT_H_RT_H_VMEM_PE = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.hrtmem       
jobnumber    29                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:43:52 2026
start_time   Sun Nov 22 22:43:53 2026
end_time     Sun Nov 22 22:43:56 2026
granted_pe   smp                 
slots        2                   
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
ru_wallclock 3s
ru_utime     0.091s
ru_stime     0.044s
ru_maxrss    4.504KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    18013               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   32                  
ru_oublock   32                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     416                 
ru_nivcsw    110                 
cpu          0.135s
mem          61.866KBs
io           511.705KB
iow          0.000s
maxvmem      7.980MB
arid         undefined
ar_sub_time  undefined
category     -l h_rt=3,h_vmem=500M -pe smp 2
"""

# qacct -j 16: -l h_vmem=100M, python MemoryError inside, script exit 0
QACCT_H_VMEM_SCRIPT_OK = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.mem          
jobnumber    16                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:13 2026
start_time   Sun Nov 22 22:39:23 2026
end_time     Sun Nov 22 22:39:23 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 0s
ru_utime     0.148s
ru_stime     0.064s
ru_maxrss    13.160KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    24615               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   8                   
ru_oublock   48                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     360                 
ru_nivcsw    80                  
cpu          0.212s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     -l h_vmem=100M
"""

# qacct -j 17: qdel of a running job
QACCT_QDEL = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.qdel         
jobnumber    17                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:13 2026
start_time   Sun Nov 22 22:39:24 2026
end_time     Sun Nov 22 22:39:25 2026
granted_pe   NONE                
slots        1                   
failed       100 : assumedly after job
exit_status  137                  (Killed)
ru_wallclock 1s
ru_utime     0.063s
ru_stime     0.056s
ru_maxrss    4.520KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15235               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   8                   
ru_oublock   24                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     260                 
ru_nivcsw    42                  
cpu          0.119s
mem          0.000Bs
io           628.097KB
iow          0.000s
maxvmem      5.086MB
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 18: -o /nonexistent/dir/x.out (Eqw, then qdel)
QACCT_BAD_OUTPUT = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.badout       
jobnumber    18                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:13 2026
start_time   -/-
end_time     -/-
granted_pe   NONE                
slots        1                   
failed       26  : opening input/output file
exit_status  0                   
ru_wallclock 0s
ru_utime     0.000s
ru_stime     0.000s
ru_maxrss    0.000B
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    0                   
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   0                   
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     0                   
ru_nivcsw    0                   
cpu          0.000s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 19: -S /no/shell (Eqw, then qdel)
QACCT_BAD_SHELL = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.badshell     
jobnumber    19                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:13 2026
start_time   -/-
end_time     -/-
granted_pe   NONE                
slots        1                   
failed       27  : searching requested shell
exit_status  0                   
ru_wallclock 0s
ru_utime     0.000s
ru_stime     0.000s
ru_maxrss    0.000B
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    0                   
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   0                   
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     0                   
ru_nivcsw    0                   
cpu          0.000s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 12: -wd /nonexistent (Eqw, then qdel)
QACCT_BAD_WD = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.eqw          
jobnumber    12                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:06 2026
start_time   -/-
end_time     -/-
granted_pe   NONE                
slots        1                   
failed       28  : changing into working directory
exit_status  0                   
ru_wallclock 0s
ru_utime     0.000s
ru_stime     0.000s
ru_maxrss    0.000B
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    0                   
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   0                   
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     0                   
ru_nivcsw    0                   
cpu          0.000s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 27 after kill -KILL of qmaster: id 27 handed out twice
QACCT_REUSED_ID = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      we                  
jobnumber    27                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:41:00 2026
start_time   Sun Nov 22 22:41:00 2026
end_time     Sun Nov 22 22:41:00 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 0s
ru_utime     0.002s
ru_stime     0.007s
ru_maxrss    4.355KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    604                 
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   8                   
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     13                  
ru_nivcsw    9                   
cpu          0.009s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.reuse.b          
jobnumber    27                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:41:45 2026
start_time   Sun Nov 22 22:41:45 2026
end_time     Sun Nov 22 22:41:46 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 1s
ru_utime     0.078s
ru_stime     0.065s
ru_maxrss    4.391KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15218               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   8                   
ru_oublock   48                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     268                 
ru_nivcsw    80                  
cpu          0.143s
mem          16.777KBs
io           628.097KB
iow          0.000s
maxvmem      5.047MB
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 13: array job -t 1-3, one record per task
QACCT_ARRAY = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.arr          
jobnumber    13                  
taskid       1                   
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:06 2026
start_time   Sun Nov 22 22:39:08 2026
end_time     Sun Nov 22 22:39:10 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 2s
ru_utime     0.072s
ru_stime     0.045s
ru_maxrss    4.496KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15217               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   40                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     262                 
ru_nivcsw    70                  
cpu          0.118s
mem          0.000Bs
io           628.097KB
iow          0.000s
maxvmem      5.094MB
arid         undefined
ar_sub_time  undefined
category     NONE
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.arr          
jobnumber    13                  
taskid       2                   
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:06 2026
start_time   Sun Nov 22 22:39:11 2026
end_time     Sun Nov 22 22:39:13 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 2s
ru_utime     0.074s
ru_stime     0.045s
ru_maxrss    4.516KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15164               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   40                  
ru_oublock   80                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     269                 
ru_nivcsw    44                  
cpu          0.118s
mem          0.000Bs
io           628.097KB
iow          0.000s
maxvmem      5.074MB
arid         undefined
ar_sub_time  undefined
category     NONE
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.arr          
jobnumber    13                  
taskid       3                   
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:06 2026
start_time   Sun Nov 22 22:39:14 2026
end_time     Sun Nov 22 22:39:16 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 2s
ru_utime     0.078s
ru_stime     0.042s
ru_maxrss    4.477KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15208               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   32                  
ru_oublock   24                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     272                 
ru_nivcsw    58                  
cpu          0.120s
mem          0.000Bs
io           628.097KB
iow          0.000s
maxvmem      5.184MB
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qacct -j 10: -pe smp 2 sleep 5
QACCT_PE = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.cap.pe2          
jobnumber    10                  
taskid       undefined
account      sge                 
priority     0                   
qsub_time    Sun Nov 22 22:39:05 2026
start_time   Sun Nov 22 22:39:28 2026
end_time     Sun Nov 22 22:39:33 2026
granted_pe   smp                 
slots        2                   
failed       0    
exit_status  0                   
ru_wallclock 5s
ru_utime     0.073s
ru_stime     0.048s
ru_maxrss    4.586KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    15256               
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   24                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     258                 
ru_nivcsw    38                  
cpu          0.121s
mem          0.000Bs
io           628.097KB
iow          0.000s
maxvmem      5.148MB
arid         undefined
ar_sub_time  undefined
category     -pe smp 2
"""


# ------------------------------------------------------------------------------------------------
# qsub
# ------------------------------------------------------------------------------------------------

def spec(**kw) -> JobSpec:
    base = dict(name="bm.s.00123.reco.1", script="/w/a/job.sh", workdir="/w/a",
                stdout="/w/a/out", stderr="/w/a/err", attempt_dir="/w/a")
    return JobSpec(**{**base, **kw})


@pytest.mark.parametrize("kw, expected", [
    ({}, ["qsub", "-terse", "-N", "bm.s.00123.reco.1", "-S", "/bin/bash", "-wd", "/w/a",
          "-o", "/w/a/out", "-e", "/w/a/err", "-V", "/w/a/job.sh"]),
    (dict(env={"RUN": "123", "FILES": "a.dat,b.dat"}, time_limit=3600, memory_mb=2000, cpus=1,
          queue="long.q", account="alcap", extra_args=["-l", "scratch=10G"]),
     ["env", "--", "RUN=123", "FILES=a.dat,b.dat",
      "qsub", "-terse", "-N", "bm.s.00123.reco.1", "-S", "/bin/bash", "-wd", "/w/a",
      "-o", "/w/a/out", "-e", "/w/a/err", "-l", "h_rt=3600", "-l", "h_vmem=2000M",
      "-q", "long.q", "-P", "alcap", "-V", "-l", "scratch=10G", "/w/a/job.sh"]),
    # memory is per slot in Grid Engine; same file for both logs -> -j y
    (dict(memory_mb=1001, cpus=4, stderr="/w/a/out", reservation="17", qos="ignored"),
     ["qsub", "-terse", "-N", "bm.s.00123.reco.1", "-S", "/bin/bash", "-wd", "/w/a",
      "-o", "/w/a/out", "-j", "y", "-l", "h_vmem=251M", "-pe", "smp", "4", "-ar", "17",
      "-V", "/w/a/job.sh"]),
])
def test_build_qsub_argv(kw, expected):
    assert build_qsub_argv(spec(**kw)) == expected


def test_build_qsub_argv_site_names_for_pe_and_memory():
    argv = build_qsub_argv(spec(cpus=2, memory_mb=100), pe_name="threaded", memory_resource="mem_free")
    assert argv[argv.index("-pe"):argv.index("-pe") + 3] == ["-pe", "threaded", "2"]
    assert "mem_free=50M" in argv


def test_build_qsub_argv_refuses_bad_variable_names():
    with pytest.raises(ValueError, match="'A-B'"):
        build_qsub_argv(spec(env={"A-B": "x"}))


def test_an_empty_job_name_is_refused_before_qsub():
    # qsub sends -N "" on (its check of an empty argument tests the pointer, not the string);
    # qmaster then answers "job rejected cause there is no job_name in the request", which
    # says nothing of where the empty name came from (tests/gridengine arrays, 3 Dec, 18:56)
    with pytest.raises(ValueError, match="empty job name"):
        build_qsub_argv(spec(name=""))
    runner = ScriptedRunner({})
    with pytest.raises(Rejected, match="empty job name"):
        GridEngineBackend(runner).submit_array(spec(name=""), 3)
    assert runner.records == []


@pytest.mark.parametrize("text, job_id", [
    ("26\n", "26"),                                                     # qsub -terse
    ("2.1-3:1\n", "2"),                                                 # qsub -terse -t 1-3
    ('Your job 4 ("plainjob") has been submitted\n', "4"),
    ('Your job-array 3.1-2:1 ("arr2") has been submitted\n', "3"),
])
def test_parse_qsub_output(text, job_id):
    assert parse_qsub_output(text) == job_id


def test_parse_qsub_output_without_id():
    with pytest.raises(ValueError):
        parse_qsub_output("")


# qsub's stderr (rc 1), captured
QSUB_UNKNOWN_RESOURCE = 'Unable to run job: unknown resource "nonsense"\nExiting.\n'
QSUB_UNKNOWN_QUEUE = 'Unable to run job: Job was rejected because job requests unknown queue "nosuch.q"\nExiting.\n'
QSUB_UNKNOWN_PROJECT = 'Unable to run job: job rejected: the requested project "noproj" does not exist\nExiting.\n'
QSUB_QMASTER_DOWN = ('error: commlib error: got select error (Connection refused)\n'
                     'Unable to run job: unable to send message to qmaster using port 6999 on host "vm": got send error\n'
                     'Exiting.\n')
QSTAT_QMASTER_DOWN = ('error: commlib error: got select error (Connection refused)\n'
                      'error: unable to send message to qmaster using port 6999 on host "vm": got send error\n')


@pytest.mark.parametrize("stderr, outage", [
    (QSUB_UNKNOWN_RESOURCE, False), (QSUB_UNKNOWN_QUEUE, False), (QSUB_UNKNOWN_PROJECT, False),
    (QSUB_QMASTER_DOWN, True), (QSTAT_QMASTER_DOWN, True),
])
def test_is_outage(stderr, outage):
    assert is_outage(stderr) is outage


# ------------------------------------------------------------------------------------------------
# qstat -xml
# ------------------------------------------------------------------------------------------------

def rows(text):
    return [(j.job_id, j.name, j.state, j.node, j.slots, j.tasks) for j in parse_qstat_xml(text)]


@pytest.mark.parametrize("text, expected", [
    ("QSTAT_MIXED", [
        ("9", "bm.cap.run1", "r", "vm", 1, ""),
        ("13", "bm.cap.arr", "r", "vm", 1, "1"),
        ("10", "bm.cap.pe2", "qw", "", 2, ""),
        ("12", "bm.cap.eqw", "Eqw", "", 1, ""),
        ("13", "bm.cap.arr", "qw", "", 1, "2,3"),
        ("11", "bm.cap.held", "hqw", "", 1, ""),
    ]),
    ("QSTAT_DELETING", [
        ("9", "bm.cap.run1", "r", "vm", 1, ""),
        ("17", "bm.cap.qdel", "dr", "vm", 1, ""),
        ("10", "bm.cap.pe2", "qw", "", 2, ""),
        ("18", "bm.cap.badout", "qw", "", 1, ""),
        ("19", "bm.cap.badshell", "qw", "", 1, ""),
    ]),
    ("QSTAT_SUSPENDED", [
        ("28", "bm.cap.susp", "s", "vm", 1, ""),
        ("18", "bm.cap.badout", "Eqw", "", 1, ""),
        ("19", "bm.cap.badshell", "Eqw", "", 1, ""),
    ]),
    ("QSTAT_EMPTY", []),
])
def test_parse_qstat_xml(text, expected):
    assert rows(globals()[text]) == expected


def test_parse_qstat_xml_keeps_owner_and_time():
    first = parse_qstat_xml(QSTAT_MIXED)[0]
    assert (first.owner, first.queue, first.since) == ("root", "all.q@vm", "2026-11-22T22:39:05")
    pending = parse_qstat_xml(QSTAT_MIXED)[2]
    assert pending.since == "2026-11-22T22:39:05"


def test_parse_qstat_xml_garbage():
    with pytest.raises(ValueError, match="not XML"):
        parse_qstat_xml("error: commlib error: got select error (Connection refused)\n")


@pytest.mark.parametrize("native, state, reason", [
    ("qw", QUEUED, ""),
    ("hqw", QUEUED, "held"),
    ("hRwq", QUEUED, "held, restarted"),
    ("Eqw", QUEUED, "error"),
    ("dqw", QUEUED, "being deleted"),
    ("r", RUNNING, ""),
    ("t", RUNNING, "starting"),
    ("Rr", RUNNING, "restarted"),
    ("Rt", RUNNING, "restarted, starting"),
    ("dr", RUNNING, "being deleted"),
    ("dt", RUNNING, "being deleted, starting"),
    ("s", RUNNING, "suspended"),
    ("S", RUNNING, "queue suspended"),
    ("T", RUNNING, "suspended by threshold"),
    ("ds", RUNNING, "being deleted, suspended"),
])
def test_map_state(native, state, reason):
    assert map_state(native) == (state, reason)


def test_parse_qstat_j_errors():
    assert parse_qstat_j_errors(QSTAT_J_HELD_EQW) == {
        "12": "error: can't chdir to /nonexistent: No such file or directory"}


# ------------------------------------------------------------------------------------------------
# qacct
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, job_id, name, failed, exit_status, requests", [
    ("QACCT_OK", "9", "bm.cap.run1", 0, 0, {}),
    ("QACCT_EXIT3", "14", "bm.cap.exit3", 0, 3, {}),
    ("QACCT_H_RT", "15", "bm.cap.hrt", 37, 137, {"h_rt": "3"}),
    ("QACCT_H_RT_H_VMEM_PE", "29", "bm.cap.hrtmem", 37, 137, {"h_rt": "3", "h_vmem": "500M"}),
    ("QACCT_H_VMEM_SCRIPT_OK", "16", "bm.cap.mem", 0, 0, {"h_vmem": "100M"}),
    ("QACCT_QDEL", "17", "bm.cap.qdel", 100, 137, {}),
    ("QACCT_BAD_OUTPUT", "18", "bm.cap.badout", 26, 0, {}),
    ("QACCT_BAD_SHELL", "19", "bm.cap.badshell", 27, 0, {}),
    ("QACCT_BAD_WD", "12", "bm.cap.eqw", 28, 0, {}),
    ("QACCT_PE", "10", "bm.cap.pe2", 0, 0, {}),
])
def test_parse_qacct_one_record(text, job_id, name, failed, exit_status, requests):
    [rec] = parse_qacct(globals()[text])
    assert (rec.job_id, rec.name, rec.failed, rec.exit_status, rec.requests) == \
        (job_id, name, failed, exit_status, requests)
    assert (rec.owner, rec.hostname) == ("root", "vm")


def test_parse_qacct_fields():
    [rec] = parse_qacct(QACCT_H_RT)
    assert rec.failed_text == "qmaster enforced h_rt, h_cpu, or h_vmem limit"
    assert rec.wallclock == 4.0
    assert rec.maxvmem == pytest.approx(5.105 * 1024**2)
    assert rec.end_time - rec.start_time == 4.0
    assert rec.task_id == "undefined"
    [never_ran] = parse_qacct(QACCT_BAD_WD)
    assert (never_ran.start_time, never_ran.end_time) == (0.0, 0.0)     # "-/-"
    assert never_ran.qsub_time > 0


def test_parse_qacct_several_records():
    assert [(r.job_id, r.name) for r in parse_qacct(QACCT_REUSED_ID)] == [("27", "we"), ("27", "bm.reuse.b")]
    assert [(r.job_id, r.task_id) for r in parse_qacct(QACCT_ARRAY)] == [("13", "1"), ("13", "2"), ("13", "3")]
    assert parse_qacct("") == []
    assert parse_qacct("error: job name bm.nomatch* not found\n") == []


@pytest.mark.parametrize("text, exit_code, failure, reason", [
    ("QACCT_OK", 0, "", ""),
    ("QACCT_PE", 0, "", ""),
    ("QACCT_EXIT3", 3, "exit-nonzero", "exit status 3"),
    ("QACCT_H_RT", 137, "timeout", "failed 37: qmaster enforced h_rt, h_cpu, or h_vmem limit; exit status 137"),
    ("QACCT_H_RT_H_VMEM_PE", 137, "timeout", "failed 37"),
    ("QACCT_QDEL", 137, "cancelled", "failed 100: assumedly after job; exit status 137"),
    ("QACCT_BAD_OUTPUT", None, "could-not-start", "failed 26: opening input/output file"),
    ("QACCT_BAD_SHELL", None, "could-not-start", "failed 27: searching requested shell"),
    ("QACCT_BAD_WD", None, "could-not-start", "failed 28: changing into working directory"),
    # h_vmem works through setrlimit: the job sees malloc fail and decides its own exit status
    ("QACCT_H_VMEM_SCRIPT_OK", 0, "", ""),
])
def test_map_accounting(text, exit_code, failure, reason):
    [rec] = parse_qacct(globals()[text])
    got = map_accounting(rec)
    assert got[:2] == (exit_code, failure)
    assert got[2].startswith(reason)


def with_fields(text: str, **replace: str) -> str:
    """A captured record with some fields replaced (cases this cluster cannot produce)."""
    lines = []
    for line in text.splitlines():
        key = line.split(" ", 1)[0]
        lines.append(f"{key:<12} {replace[key]}" if key in replace else line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("replace, exit_code, failure", [
    # limit enforced by qmaster with only h_vmem requested, and usage over it
    (dict(failed="37  : qmaster enforced h_rt, h_cpu, or h_vmem limit", category="-l h_vmem=100M",
          maxvmem="120.000MB"), 137, "out-of-memory"),
    # h_rt and h_vmem requested, killed before h_rt with the memory over the limit
    (dict(failed="37  : qmaster enforced h_rt, h_cpu, or h_vmem limit", category="-l h_rt=3600,h_vmem=1G",
          ru_wallclock="20s", maxvmem="1.100GB"), 137, "out-of-memory"),
    # killed by a signal after running past h_rt (execd-side kill)
    (dict(failed="100 : assumedly after job", category="-l h_rt=3", ru_wallclock="5s"), 137, "timeout"),
    (dict(failed="0    ", exit_status="137                  (Killed)"), 137, "exit-nonzero"),
    (dict(failed="19  : before writing exit_status", exit_status="0"), 0, "node-fail"),
])
def test_map_accounting_other_cases(replace, exit_code, failure):
    [rec] = parse_qacct(with_fields(QACCT_H_RT, **replace))
    assert map_accounting(rec)[:2] == (exit_code, failure)


def test_pick_record_reused_id_matches_the_name():
    records = parse_qacct(QACCT_REUSED_ID)
    assert pick_record(records, "bm.reuse.b", "27").qsub_time > pick_record(records, "we", "27").qsub_time
    assert pick_record(records, "bm.reuse.b", "27").name == "bm.reuse.b"
    assert pick_record(records, "bm.reuse.b", "").job_id == "27"       # id forgotten: by name
    assert pick_record(records, "bm.reuse.b", "99") is None            # another job of that name
    assert pick_record(records, "bm.other", "27") is None


def test_pick_record_takes_the_latest():
    assert pick_record(parse_qacct(QACCT_ARRAY), "bm.cap.arr", "13").task_id == "3"
    old, new = parse_qacct(QACCT_EXIT3) + parse_qacct(with_fields(
        QACCT_EXIT3, jobnumber="140", end_time="Sun Nov 22 23:00:00 2026", exit_status="0"))
    assert pick_record([new, old], "bm.cap.exit3", "") is new
    assert pick_record([new, old], "bm.cap.exit3", "14") is old


@pytest.mark.parametrize("value, parsed", [
    ("4s", 4.0), ("0.011s", 0.011), ("3", 3.0), ("0:0:3", 3.0), ("01:00:00", 3600.0), ("x", 0.0),
])
def test_parse_duration(value, parsed):
    assert parse_duration(value) == pytest.approx(parsed)


@pytest.mark.parametrize("value, parsed", [
    ("5.105MB", 5.105 * 1024**2), ("0.000B", 0.0), ("100M", 100 * 1024**2), ("1G", 1024**3),
    ("4.566KB", 4.566 * 1024), ("1024", 1024.0),
])
def test_parse_size(value, parsed):
    assert parse_size(value) == pytest.approx(parsed)


def test_parse_category_requests():
    assert parse_category_requests("-l h_rt=3,h_vmem=500M -pe smp 2") == {"h_rt": "3", "h_vmem": "500M"}
    assert parse_category_requests("-u root -l h_rt=3 -q all.q -l scratch=1G") == {"h_rt": "3", "scratch": "1G"}
    assert parse_category_requests("NONE") == {}


# ------------------------------------------------------------------------------------------------
# the qacct name pattern
# ------------------------------------------------------------------------------------------------

def libc_fnmatch():
    path = ctypes.util.find_library("c")
    if not path:
        pytest.skip("no C library to check fnmatch patterns with")
    fnmatch = ctypes.CDLL(path).fnmatch
    return lambda pattern, name: fnmatch(pattern.encode(), name.encode(), 0) == 0


@pytest.mark.parametrize("names, pattern", [
    (["bm.s.00123.reco.1"], "bm.s.00123.reco.1"),
    (["bm.s.00123.reco.1", "bm.s.00456.reco.1"], "bm.s.00[14][25][36].reco.1"),
    (["bm.s.00123.reco.1", "bm.s.00123.reco.12"], "bm.s.00123.reco.1*"),
    (["12ab"], "[1]2ab"),                      # a leading digit would make qacct read a job number
    (["-x"], "[\\-]x"),                        # a leading dash would read as an option
    (["a*b", "a?c"], "a[\\*\\?][bc]"),
])
def test_name_pattern(names, pattern):
    assert name_pattern(names) == pattern


def test_name_pattern_matches_exactly_what_fnmatch_should():
    fnmatch = libc_fnmatch()
    names = ["bm.s.00123.reco.1", "bm.s.00456.reco.1", "bm.s.00456.reco.12", "bm.t.1",
             "weird*[]!^-\\name", "-dash", "7up"]
    for group in (names[:2], names[:3], names, names[4:5], names[5:]):
        pattern = name_pattern(group)
        assert all(fnmatch(pattern, n) for n in group), (pattern, group)
    assert not fnmatch(name_pattern(names[:2]), "bm.s.00789.reco.1")
    assert not fnmatch(name_pattern(names[:2]), "bm.s.00123.reco.2")


def test_build_qacct_argv():
    assert build_qacct_argv("ciuser", ["bm.a.1", "bm.a.2"]) == ["qacct", "-o", "ciuser", "-j", "bm.a.[12]"]


# ------------------------------------------------------------------------------------------------
# the backend with captured output (commands counted, no cluster)
# ------------------------------------------------------------------------------------------------

class ScriptedRunner:
    """Answers each command with captured output, keyed by the program (and -j for qstat)."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        self.answers = answers
        self.records: list[list[str]] = []

    def __call__(self, argv, **kw):
        self.records.append(argv)
        key = "qstat -j" if argv[:2] == ["qstat", "-j"] else "qsub" if "qsub" in argv else argv[0]
        rc, out, err = self.answers[key]
        return subprocess.CompletedProcess(argv, rc, out, err)


def test_query_two_commands_for_queue_and_accounting():
    runner = ScriptedRunner({"qstat": (0, QSTAT_DELETING, ""), "qacct": (0, QACCT_EXIT3 + QACCT_H_RT, "")})
    got = GridEngineBackend(runner, user="root").query(
        {"bm.cap.run1": "9", "bm.cap.qdel": "17", "bm.cap.pe2": "", "bm.cap.exit3": "14",
         "bm.cap.hrt": "15"})
    assert [r[0] for r in runner.records] == ["qstat", "qacct"]
    assert runner.records[1] == ["qacct", "-o", "root", "-j", "bm.cap.[eh][rx][it]*"]
    assert {n: (i.state, i.job_id, i.exit_code, i.failure) for n, i in got.items()} == {
        "bm.cap.run1": (RUNNING, "9", None, ""),
        "bm.cap.qdel": (RUNNING, "17", None, ""),
        "bm.cap.pe2": (QUEUED, "10", None, ""),
        "bm.cap.exit3": (FINISHED, "14", 3, "exit-nonzero"),
        "bm.cap.hrt": (FINISHED, "15", 137, "timeout"),
    }


def test_query_eqw_reason_costs_one_qstat_j_for_all():
    runner = ScriptedRunner({"qstat": (0, QSTAT_MIXED, ""), "qstat -j": (0, QSTAT_J_HELD_EQW, "")})
    got = GridEngineBackend(runner, user="root").query({"bm.cap.eqw": "12", "bm.cap.held": "11",
                                                        "bm.cap.arr": "13"})
    assert runner.records == [["qstat", "-xml", "-u", "root"], ["qstat", "-j", "12"]]
    assert got["bm.cap.eqw"].state == QUEUED
    assert "can't chdir to /nonexistent" in got["bm.cap.eqw"].reason
    assert (got["bm.cap.held"].state, got["bm.cap.held"].reason) == (QUEUED, "held")
    assert (got["bm.cap.arr"].state, got["bm.cap.arr"].native_state) == (RUNNING, "r")


def test_query_unknown_job_is_absent_and_lagging_one_running():
    runner = ScriptedRunner({"qstat": (0, QSTAT_EMPTY, ""),
                             "qacct": (1, "", "error: job name bm.[xy] not found\n")})
    backend = GridEngineBackend(runner, user="root")
    backend._last_queued["y"] = backend.clock()          # left the queue a moment ago
    got = backend.query({"x": "5", "y": "6"})
    assert (got["x"].state, got["y"].state) == (ABSENT, RUNNING)


def test_query_outage():
    runner = ScriptedRunner({"qstat": (1, "", QSTAT_QMASTER_DOWN)})
    with pytest.raises(BackendUnavailable, match="commlib error"):
        GridEngineBackend(runner, user="root").query({"x": "1"})


@pytest.mark.parametrize("stderr, error", [
    (QSUB_UNKNOWN_RESOURCE, Rejected), (QSUB_UNKNOWN_QUEUE, Rejected), (QSUB_QMASTER_DOWN, BackendUnavailable),
])
def test_submit_refused(stderr, error):
    runner = ScriptedRunner({"qsub": (1, "", stderr)})
    with pytest.raises(error) as e:
        GridEngineBackend(runner, user="root").submit(spec())
    assert "Exiting" not in str(e.value) and "Unable to run job" not in str(e.value)


def test_cancel_gone_jobs_is_fine():
    runner = ScriptedRunner({"qdel": (1, "root has registered the job 5 for deletion\n",
                                      'denied: job "99999" does not exist\n')})
    GridEngineBackend(runner, user="root").cancel(["5", "99999"])
    assert runner.records == [["qdel", "5", "99999"]]
