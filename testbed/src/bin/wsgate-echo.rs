//! A WebSocket echo upstream for trying wsgate by hand: `wsgate-echo [ADDR]`
//! (default 127.0.0.1:8080). Prints each request it receives (method, path, headers).

use std::time::Duration;

use testbed::echo::Echo;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let echo = match Echo::bind(&addr) {
        Ok(echo) => echo,
        Err(error) => {
            eprintln!("wsgate-echo: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    println!("wsgate-echo: listening on {}", echo.addr());
    let mut printed = 0;
    loop {
        let seen = echo.seen();
        for request in seen.iter().skip(printed) {
            println!("{} {}", request.method, request.path);
            for (name, value) in &request.headers {
                println!("  {name}: {value}");
            }
        }
        printed = seen.len();
        std::thread::sleep(Duration::from_millis(200));
    }
}
