/* bare_server: the /process service with a store that keeps nothing (bench/store_null.c), the
 * baseline that leaky's throughput is compared with. Same flags as leaky. */
#include "svc.h"

int main(int argc, char **argv)
{
    return svc_main(argc, argv);
}
