/* leaky: the /process service with a store that never forgets (leaky/store.c). */
#include "svc.h"

int main(int argc, char **argv)
{
    return svc_main(argc, argv);
}
