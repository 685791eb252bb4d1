#!/usr/bin/env python3
"""Splits a `perf record -a -g` profile of one process into where its CPU goes (ONNX Runtime, Npgsql, Parquet, GC...).

Record with the service's JIT frames resolvable (perf map, no W^X double mapping, no ReadyToRun code):
  DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 DOTNET_ReadyToRun=0 \
    perf record -a -g -F 499 -o light.data -- dotnet <bench>/batchscore-bench.dll --workload light --variants rg16k ...
  perf script -i light.data --pid PID -F pid,tid,comm,time,ip,sym,dso > light.script
  python3 tests/scripts/perf-categories.py PID T_START T_END < light.script
PID is the serve process the benchmark prints; T_START/T_END (perf timestamps, seconds) bound the job. Each sample
goes to the first frame, from the leaf up, that matches a category; the share is of the process's samples.
"""
import collections
import re
import sys

pid = sys.argv[1]; t0=float(sys.argv[2]); t1=float(sys.argv[3])
cats=[('ort','libonnxruntime'),('npgsql-importer','NpgsqlBinaryImporter|NpgsqlParameter|PgTypeInfo|PgConverter|PgWriter|Npgsql.Internal.Converters'),
('npgsql-other','Npgsql'),('copyrows','ResultTable|ColumnWriter'),
('parquet','\\[Parquet\\]|Snappier|ParquetDataset|IronCompress'),('validate','RowValidator'),('tensorfill','InputTensors'),('outputlayout','OutputLayout'),
('slice','ColumnBatch::|BatchColumn::'),('drift','Drift'),('scoremodel','ScoringModel'),('buildoutput','BuildOutputRows'),
('metrics','Metrics|Instrument|Histogram|Activity'),('channels','Channels'),('logging','Logging'),('masstransit','MassTransit'),('rabbit','RabbitMQ'),('efcore','EntityFramework'),('aspnet','AspNetCore'),('sockets','System.Net.Sockets'),
('jit','libclrjit')]
c=collections.Counter(); sub=collections.Counter(); n=0
cur=None; frames=[]
hdr=re.compile(r'^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):')
def flush():
    global n
    if cur is None or not frames: return
    p,comm,t=cur
    if p!=pid or not (t0<=t<=t1): return
    n+=1
    leafdso=frames[0][1]
    cat=None
    if 'BGC' in comm or 'GC' in comm: cat='gc-thread'
    else:
        for s,d in frames:
            for name,pat in cats:
                if re.search(pat, s+' '+d): cat=name; break
            if cat: break
    cat=cat or 'other'
    c[cat]+=1
    leafkind = 'coreclr' if 'coreclr' in leafdso else ('kernel' if 'kallsyms' in leafdso else ('libc' if 'libc' in leafdso else 'code'))
    sub[(cat,leafkind)]+=1
for line in sys.stdin:
    if not line.strip():
        flush(); cur=None; frames=[]; continue
    if not line.startswith('\t') and not line.startswith('        '):
        m=hdr.match(line)
        if m: cur=(m.group(2), m.group(1).strip(), float(m.group(4))); frames=[]
        continue
    parts=line.strip().split(' ',1)
    if len(parts)<2: continue
    rest=parts[1]; i=rest.rfind(' (')
    frames.append((rest[:i], rest[i+2:-1].split('/')[-1]))
flush()
print('samples',n)
for k,v in c.most_common(): 
    det=', '.join(f"{lk} {sub[(k,lk)]*100/n:.1f}" for lk in ['code','coreclr','kernel','libc'] if sub[(k,lk)])
    print(f"{v*100/n:6.2f}% {k:16s} ({det})")
