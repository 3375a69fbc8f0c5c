# Instrumented AT of the peer's LeNet: loss, dead-unit fractions per layer, weight norms.
import sys, os, json
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, '/work/wt-at/bench')
import torch, torch.nn.functional as F
from peer_quick_torch import read_batches, augment, pgd, TRAIN_FILES
from peer_train_torch import LeNet
seed=int(sys.argv[1]); lr_max=float(sys.argv[2]); steps=int(sys.argv[3]); limit=int(sys.argv[4])
torch.set_num_threads(1)
x_all,y_all=read_batches('/work/shared/data/cifar-10-batches-bin',TRAIN_FILES)
x_all,y_all=x_all[:limit],y_all[:limit]
torch.manual_seed(seed); model=LeNet(10); gen=torch.Generator().manual_seed(seed+1)
spe=len(y_all)//128; total=15*spe
opt=torch.optim.SGD(model.parameters(),lr=lr_max,momentum=0.9,weight_decay=5e-4)
sch=torch.optim.lr_scheduler.OneCycleLR(opt,max_lr=lr_max,total_steps=total,pct_start=0.3,cycle_momentum=False)
acts={}
def hook(name):
    def f(m,i,o): acts[name]=o.detach()
    return f
for n in ['conv1','conv2','fc1','fc2']: getattr(model,n).register_forward_hook(hook(n))
step=0
while step<steps:
    order=torch.randperm(len(y_all),generator=gen)
    for s in range(spe):
        if step>=steps: break
        idx=order[s*128:(s+1)*128]; x=augment(x_all[idx],gen); y=y_all[idx]
        xa=pgd(model,x,y,gen)
        opt.zero_grad(); out=model(xa); loss=F.cross_entropy(out,y); loss.backward(); opt.step(); sch.step()
        if step%10==0 or step==steps-1:
            with torch.no_grad():
                model(x)
                dead={n:float(((acts[n]>0).flatten(2).any(-1).any(0) if acts[n].dim()==4 else (acts[n]>0).any(0)).logical_not().float().mean()) for n in acts}
            print(json.dumps({'step':step,'lr':opt.param_groups[0]['lr'],'loss':round(loss.item(),4),'acc':float((out.argmax(1)==y).float().mean()),'dead':dead,'outstd':float(out.std(0).mean())}),flush=True)
        step+=1
