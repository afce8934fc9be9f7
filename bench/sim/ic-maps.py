#!/usr/bin/env python3
# Maps per inline-cache site from a V8 IC log, worst first: which property reads and
# writes see objects of many shapes (hidden classes), and in which function.
#   node --log-ic --logfile=/tmp/ic.log --no-logfile-per-isolate --import tsx bench/sim/cpu.ts --to 20 [--members]
#   python3 bench/sim/ic-maps.py /tmp/ic.log [path filter, e.g. src/]
# Columns: transitions to polymorphic (P) or megamorphic (N), the distinct maps the site
# saw, the IC kind, the property, function@column (tsx emits one line per file).
import bisect, collections, os, re, sys
starts=[]; ends={}; names={}
agg=collections.Counter(); maps=collections.defaultdict(set)
def add(a,sz,name):
    i=bisect.bisect_left(starts,a)
    if i<len(starts) and starts[i]==a: pass
    else: starts.insert(i,a)
    ends[a]=a+sz; names[a]=name
def find(pc):
    i=bisect.bisect_right(starts,pc)-1
    j=i
    while j>=0 and j>i-200:
        a=starts[j]
        if a<=pc<ends[a]: return names[a]
        j-=1
    return '?'
for line in open(sys.argv[1], errors='replace'):
    f=line.rstrip('\n').split(',')
    if f[0]=='code-creation' and len(f)>6:
        try: a=int(f[4],16); sz=int(f[5])
        except: continue
        add(a,sz,','.join(f[6:]).split(',0x')[0])
    elif f[0]=='code-move':
        try: a=int(f[1],16); b=int(f[2],16)
        except: continue
        if a in ends: add(b,ends[a]-a,names[a])
    elif f[0] in ('LoadIC','StoreIC','KeyedLoadIC','KeyedStoreIC') and len(f)>8:
        name=find(int(f[1],16))
        name=re.sub('file://' + os.getcwd() + '/','',name); name=re.sub(r':\d+:\d+$','',name)
        k=(name,f[0],f[8],f[4])
        maps[k].add(f[7])
        if f[6] in ('P','N') and f[5]!=f[6]: agg[(name,f[0],f[8],f[4],f[6])]+=1
flt=sys.argv[2] if len(sys.argv)>2 else ''
rows = [(len(maps[(name, kind, key, col)]), n, new, kind, key, name, col) for (name, kind, key, col, new), n in agg.items()]
for nmaps, n, new, kind, key, name, col in sorted(rows, reverse=True):
    if flt in name and 'node_modules' not in name: print(f'{n:3d} {new} {nmaps:4d} maps {kind:12s} {key:18s} {name}@{col}')
