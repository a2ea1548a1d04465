"""Module dependency cycles in src/ (file granularity): `use` paths through crate::,
super::, self:: and rift:: resolved to the file that defines the module, test modules
(after `#[cfg(test)]`) ignored, a child's import of its parent ignored. Prints one
`cycle:` line per strongly connected component of more than one file."""
import re,os,sys
root='src'
files={}
for d,_,fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p=os.path.join(d,f)
            mod=p[len(root)+1:-3].replace('/','::')
            if mod.endswith('::mod'): mod=mod[:-5]
            if mod in('lib','main'): mod=''
            files[mod]=open(p).read()
def resolve(cur, path):
    parts=path.split('::')
    base=cur.split('::') if cur else []
    # super relative to module file: for non-mod files, super = parent
    out=[]
    if parts[0]=='crate' or parts[0]=='rift':
        out=[]; parts=parts[1:]
    elif parts[0]=='super':
        out=base[:-1]
        parts=parts[1:]
        while parts and parts[0]=='super':
            out=out[:-1]; parts=parts[1:]
    elif parts[0]=='self':
        out=base; parts=parts[1:]
    else:
        return None
    # longest prefix that is a module
    cand=out+parts
    for i in range(len(cand),0,-1):
        m='::'.join(cand[:i])
        if m in files: return m
    return None
edges={m:set() for m in files}
for m,t in files.items():
    # strip test modules
    t=t.split('#[cfg(test)]')[0]
    for u in re.findall(r'\b((?:crate|super|self|rift)(?:::\w+)+)',t):
        r=resolve(m,u)
        if r is not None and r!=m and not m.startswith(r+'::') and r!='':
            edges[m].add(r)
# find cycles between sibling-ish files (SCCs)
sys.setrecursionlimit(10000)
idx={};low={};st=[];on=set();sccs=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
for s in sccs:
    ss=set(s)
    print('cycle: ' + '; '.join(v + ' -> ' + ', '.join(sorted(edges[v] & ss)) for v in sorted(s)))
