use anyhow::Result;
use arca_crypto::format_digits;

use super::Ctx;
use crate::exit::{NotSetUp, OK};

pub fn show(ctx: &Ctx) -> Result<i32> {
    let Some(key) = ctx.device.stored_key()? else {
        return Err(NotSetUp(format!(
            "this device has no key (config folder {}); run `arca enable --key`",
            ctx.device.dir.display()
        ))
        .into());
    };
    let digits = format_digits(&key);
    if ctx.json {
        ctx.emit_json(serde_json::json!({ "key": digits }));
    } else {
        println!("{digits}");
    }
    Ok(OK)
}
