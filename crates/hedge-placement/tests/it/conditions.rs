use crate::*;
use expect_test::expect;
use hedge_core::{Accelerator, Market, ProviderId};
use hedge_placement::{Conditions, Unusable};

/// A fake of the broker's/simulator's view: one provider down, spot capacity limited per zone.
struct World {
    down: &'static str,
    spot_gpus: &'static [(&'static str, u32)],
}

impl Conditions for World {
    fn provider_usable(&self, p: &ProviderId) -> Result<(), Unusable> {
        if p.as_str() == self.down {
            Err(Unusable("outage".into()))
        } else {
            Ok(())
        }
    }
    fn gpus_available(
        &self,
        _: &ProviderId,
        loc: &Location,
        _: &Accelerator,
        market: Market,
    ) -> Option<u32> {
        if market != Market::Spot {
            return None;
        }
        let zone = loc.zone().map(|z| z.as_str()).unwrap_or("");
        Some(
            self.spot_gpus
                .iter()
                .find(|(z, _)| *z == zone)
                .map_or(0, |(_, n)| *n),
        )
    }
}

fn cat() -> Catalog {
    catalog(vec![
        offer("aws", "p5.48xlarge", "H100:8", "us-east-1/use1-az1")
            .od(98.32)
            .spot(20.0),
        offer("aws", "p5.48xlarge", "H100:8", "us-east-1/use1-az2")
            .od(98.32)
            .spot(25.0),
        offer(
            "gcp",
            "a3-highgpu-8g",
            "H100:8",
            "us-central1/us-central1-a",
        )
        .od(88.0)
        .spot(22.0),
        offer("lambda", "gpu_8x_h100_sxm5", "H100:8", "us-east-1").od(23.92),
    ])
}

#[test]
fn outage_and_spot_capacity_shape_the_choice() {
    let world = World {
        down: "gcp",
        spot_gpus: &[("use1-az1", 4), ("use1-az2", 16)],
    };
    let c = cat();
    let ctx = PlacementContext::new(&c).with_conditions(&world);
    let p = place(
        &req("H100:8").spot().task(),
        &ctx,
        &PlacementSettings::default(),
    );
    expect![[r#"
        chosen: aws p5.48xlarge us-east-1/use1-az2 spot 1xH100:8 alt0 $25.00/h
          rejected[0]: gcp: provider unavailable (outage)
          rejected[0]: lambda: no spot market
    "#]]
    .assert_eq(&render(&p));

    let mut t = req("H100:8").spot().cloud("aws").task();
    t.num_nodes = 3;
    let p = place(&t, &ctx, &PlacementSettings::default());
    expect![[r#"
        chosen: none
          rejected[0]: aws: fewer than 24 GPUs available (spot)
    "#]]
    .assert_eq(&render(&p));
}

#[test]
fn rejections_serialize_for_the_broker() {
    let world = World {
        down: "aws",
        spot_gpus: &[],
    };
    let c = cat();
    let ctx = PlacementContext::new(&c).with_conditions(&world);
    let p = place(
        &req("H100:8").cloud("aws").task(),
        &ctx,
        &PlacementSettings::default(),
    );
    let json = serde_json::to_string(&p.rejected).unwrap();
    expect![[r#"[{"provider":"aws","alternative":0,"accelerators":{"name":"H100","count":8},"reason":{"kind":"unavailable","reason":"outage"},"message":"aws: provider unavailable (outage)"}]"#]]
        .assert_eq(&json);
    let back: Vec<hedge_placement::Rejection> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p.rejected);
}
