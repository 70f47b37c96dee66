const a=require('acdc-ml');
const fr=a.readXyzSync('examples/molecules.xyz').slice(0,20);
const h={cutoff:{radius:4,smoothing:{type:'ShiftedCosine',width:0.5}},density:{type:'Gaussian',width:0.3},basis:{type:'TensorProduct',max_angular:2,radial:{type:'Gto',max_radial:2}}};
for (const C of [a.SoapPowerSpectrum,a.SphericalExpansion,a.SoapRadialSpectrum]) {
 const c=new C(C===a.SoapRadialSpectrum?{...h,basis:{radial:h.basis.radial}}:h);
 const full=c.computeSync(fr);
 const j=a.TensorMap.join([c.computeSync(fr.slice(0,7)),c.computeSync(fr.slice(7))],{systemCounts:[7,13]});
 const k=(t)=>Array.from({length:t.keys.count},(_,i)=>t.keys.row(i).join(',')).join(' ');
 console.log(C.name, k(full)===k(j), k(full).slice(0,200));
}
